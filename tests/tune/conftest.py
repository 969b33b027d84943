"""Helpers of the tune tests: this folder importable (``tune_toy_entry``) here and in workers; study files."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
# Not ``tests.tune.toy_entry``: an installed package named ``tests`` shadows the repo's namespace package.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

TOY_STUDY = {
    "entry_point": "tune_toy_entry",
    "objective": {"metric": "score", "direction": "maximize"},
    "pruner": {"type": "median", "n_startup_trials": 3, "n_warmup_steps": 1},
    "sampler": {"type": "random"},
    "base": {"epochs": 6},
    "search_space": {
        "x": {"type": "float", "low": 0.0, "high": 1.0},
        "y": {"type": "float", "low": 0.0, "high": 1.0},
    },
}


@pytest.fixture(autouse=True)
def toy_on_pythonpath(isolated_mlflow: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes import the toy entry module too."""
    monkeypatch.setenv("PYTHONPATH", str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.fixture
def write_study(tmp_path: Path):
    """write_study(name, **changes) -> path of a toy study file (top-level keys replaced by changes)."""

    def write(name: str = "toy", **changes) -> str:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**TOY_STUDY, **changes}, sort_keys=False))
        return str(path)

    return write


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server on a loopback port (Debian's ``postgresql`` package; CI installs it
    from .ci/apt-packages.txt). postgres refuses to run as root, so under root it runs as ``postgres``."""
    bindir = _pg_bin()
    if bindir is None:  # not a skip: the multi-machine storage must be tested
        pytest.fail("PostgreSQL binaries missing: apt-get install postgresql (.ci/apt-packages.txt)")
    root = Path(tempfile.mkdtemp(prefix="tune-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    run = functools.partial(subprocess.run, check=True, capture_output=True, text=True)
    run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "tune", "--auth=trust", "-E", "UTF8"])
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    pg_ctl = [*prefix, str(bindir / "pg_ctl"), "-D", str(data)]
    run([*pg_ctl, "-o", options, "-l", str(root / "log"), "-w", "start"])
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="tune", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE optuna")
        conn.close()
        yield f"postgresql://tune@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
