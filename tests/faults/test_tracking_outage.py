"""The tracking server goes away in the middle of a run and comes back: the run waits for it (MLflow's
HTTP client retries with backoff; our logger keeps what it could not send) and ends FINISHED with
continuous curves, its checkpoint on the server's artifact store."""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

from tests.faults.helpers import (
    CLASSIFY,
    CLASSIFY_STEPS_PER_EPOCH,
    assert_continuous_curves,
    finish,
    launch_paused,
    run_ids,
    wait_status,
)
from tests.servers import free_port, start_server, stop_server


def start(root, port: int):
    """An MLflow server on a SQLite store (what it stores is not the subject here), artifacts under root."""
    store = [
        "--backend-store-uri",
        f"sqlite:///{root / 'server.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
    ]
    return start_server(port, root / "server.log", *store)


def test_tracking_server_outage_mid_run(tmp_path, monkeypatch):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    server = start(tmp_path, port)
    try:
        proc = launch_paused("classify", CLASSIFY, CLASSIFY_STEPS_PER_EPOCH + 2, tmp_path)
        stop_server(server)  # gone while epoch 2 ends and logs its curves and checkpoint
        server = start(tmp_path, port)
        code, err = finish(proc)
        assert code == 0, err[-2000:]
        (run_id,) = run_ids()
        wait_status(run_id, "FINISHED")
        assert_continuous_curves(run_id, epochs=3)
        artifacts = {f.path for f in MlflowClient().list_artifacts(run_id, "checkpoints")}
        assert "checkpoints/last.pt" in artifacts
        assert not (tmp_path / "mlruns").exists()  # the artifacts went to the server's store
    finally:
        stop_server(server)
