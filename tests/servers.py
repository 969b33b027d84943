"""Real servers on loopback ports for the tests: a throw-away PostgreSQL cluster, and tracking servers
started with ``python -m projects.core.server`` (what ``make server`` runs) and stopped as a user stops it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from projects.core.errors import ConfigError
from projects.core.server import Cluster, create_databases, free_port, pg_bindir, wait_healthy
from tests.conftest import PYTHON, REPO

# Throw-away data: no fsync, so that initdb and MLflow's schema migrations take seconds.
PG_TEST_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def scratch_folder(prefix: str) -> Path:
    """A temp folder that the ``postgres`` user can reach (pytest's own are private to root)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


@contextmanager
def postgres(user: str, database: str, password: str | None = None) -> Iterator[Cluster]:
    """A PostgreSQL cluster with ``database`` (Debian's ``postgresql`` package, in .ci/apt-packages.txt),
    removed afterwards. Not a skip when the package is missing: what it stands for must be tested."""
    try:
        bindir = pg_bindir()
    except ConfigError as exc:
        pytest.fail(str(exc))
    root = scratch_folder("test-pg-")
    cluster = Cluster(root / "data", free_port(), user, options=PG_TEST_OPTIONS, bindir=bindir)
    try:
        cluster.init(password)
        cluster.start()
        create_databases(cluster, (database,))
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Server:
    """A running ``python -m projects.core.server`` and the URL its MLflow server answers on."""

    process: subprocess.Popen
    url: str
    log: Path


def start_server(port: int, log: Path, *args: str, env: dict[str, str] | None = None) -> Server:
    """Start the launcher with ``args`` (one worker) and wait until MLflow answers ``/health``."""
    command = [PYTHON, "-m", "projects.core.server", "--port", str(port), "--workers", "1", *args]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
    except ConfigError as exc:
        stop_server(Server(process, url, log))
        raise AssertionError(f"{exc}\n{log.read_text()[-3000:]}") from None
    return Server(process, url, log)


def stop_server(server: Server) -> int:
    """SIGINT, as a Ctrl-C: the launcher stops ``mlflow server``, then the cluster it started."""
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGINT)
    return server.process.wait(timeout=120)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@contextmanager
def optuna_dashboard(storage: str) -> Iterator[str]:
    """``optuna-dashboard <storage>`` on a free loopback port; yields its URL once its API answers."""
    port = free_port()
    dashboard = Path(PYTHON).with_name("optuna-dashboard")
    process = subprocess.Popen(
        [str(dashboard), storage, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                get_json(f"{url}/api/studies")
                break
            except OSError:
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "optuna-dashboard did not come up"
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def dashboard_trials(url: str, study_name: str) -> list[dict]:
    """The trials optuna-dashboard shows for ``study_name``."""
    (summary,) = [
        s for s in get_json(f"{url}/api/studies")["study_summaries"] if s["study_name"] == study_name
    ]
    detail = get_json(f"{url}/api/studies/{summary['study_id']}")
    assert detail["name"] == study_name
    return detail["trials"]
