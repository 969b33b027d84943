"""The tracking server goes away in the middle of a run and comes back: the run waits for it (MLflow's
HTTP client retries with backoff; our logger keeps what it could not send) and ends FINISHED with
continuous curves, its checkpoint on the server's artifact store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.request

import mlflow
from mlflow.tracking import MlflowClient

from tests.faults.helpers import (
    BIN,
    CLASSIFY,
    CLASSIFY_STEPS_PER_EPOCH,
    assert_continuous_curves,
    finish,
    launch_paused,
    run_ids,
    wait_for,
    wait_status,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root, port: int) -> subprocess.Popen:
    cmd = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'server.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log = open(root / "server.log", "ab")  # noqa: SIM115 (the server keeps it)
    server = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return True
        except OSError:
            return False

    wait_for(healthy, "the tracking server to answer", timeout=120)
    return server


def stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=60)


def test_tracking_server_outage_mid_run(tmp_path, monkeypatch):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    server = start_server(tmp_path, port)
    try:
        proc = launch_paused("classify", CLASSIFY, CLASSIFY_STEPS_PER_EPOCH + 2, tmp_path)
        stop(server)  # gone while epoch 2 ends and logs its curves and checkpoint
        server = start_server(tmp_path, port)
        code, err = finish(proc)
        assert code == 0, err[-2000:]
        (run_id,) = run_ids()
        wait_status(run_id, "FINISHED")
        assert_continuous_curves(run_id, epochs=3)
        artifacts = {f.path for f in MlflowClient().list_artifacts(run_id, "checkpoints")}
        assert "checkpoints/last.pt" in artifacts
        assert not (tmp_path / "mlruns").exists()  # the artifacts went to the server's store
    finally:
        stop(server)
