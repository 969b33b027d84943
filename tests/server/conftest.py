"""One team tracking server for this folder: ``python -m projects.core.server`` (what ``make server`` runs)
with its own PostgreSQL cluster (password authentication) and artifact folder, started once (~20 s).

Every test talks to it through ``MLFLOW_TRACKING_URI=http://...`` in its own experiment; PostgreSQL
clients (``tune``'s storage, optuna-dashboard) get the password from ``PGPASSWORD`` only.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import REPO
from tests.servers import PG_TEST_OPTIONS, Server, free_port, scratch_folder, start_server, stop_server

PASSWORD = "team-pw-7Qx"  # never to be found in a param, a tag or a message
TOY_ENTRY_DIR = REPO / "tests" / "tune"  # tune_toy_entry: the cheap entry point the tune tests drive
if str(TOY_ENTRY_DIR) not in sys.path:
    sys.path.insert(0, str(TOY_ENTRY_DIR))


@dataclass
class TeamServer:
    server: Server
    data: Path
    pg_port: int
    password: str = PASSWORD

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def artifacts(self) -> Path:
        return self.data / "artifacts"

    def storage(self, database: str = "optuna") -> str:
        """A PostgreSQL URL of the server's cluster, without the password (clients read PGPASSWORD)."""
        return f"postgresql://mlflow@127.0.0.1:{self.pg_port}/{database}"


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="session")
def team_server() -> Iterator[TeamServer]:
    root = scratch_folder("team-server-")
    port, pg_port = free_port(), free_port()
    args = ["--data", str(root / "data"), "--pg-port", str(pg_port), "--pg-options", PG_TEST_OPTIONS]
    server = start_server(port, root / "launcher.log", *args, env={"PGPASSWORD": PASSWORD})
    try:
        yield TeamServer(server, root / "data", pg_port)
    finally:
        code = stop_server(server)
        log = (root / "launcher.log").read_text()[-3000:]
        shutil.rmtree(root, ignore_errors=True)
    # Ctrl-C stops both servers
    assert code == 0 and refused(port) and refused(pg_port), log


@pytest.fixture(autouse=True)
def through_the_server(
    team_server: TeamServer,
    isolated_mlflow: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> str:
    """This test's experiment on the team server; tune's toy entry importable here and in subprocesses."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.url)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    monkeypatch.setenv("PYTHONPATH", str(TOY_ENTRY_DIR) + os.pathsep + os.environ["PYTHONPATH"])
    mlflow.set_tracking_uri(team_server.url)
    name = f"{request.node.name}-{os.urandom(4).hex()}"
    MlflowClient().create_experiment(name)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", name)  # not mlflow.set_experiment: it sets a process global
    return name
