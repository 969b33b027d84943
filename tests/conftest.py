"""Every test runs in its own folder with its own MLflow store (SQLite + ./mlruns) and checkpoints."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import mlflow
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
PYTHON = sys.executable


@pytest.fixture(autouse=True)
def isolated_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd = tmp_path, tracking at sqlite:///tmp_path/mlflow.db, nothing leaks between tests."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("PROJECTS_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)  # mlflow.set_experiment exports it
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    mlflow.set_tracking_uri(uri)
    while mlflow.active_run():
        mlflow.end_run()
    yield tmp_path
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture
def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``run_main(module, argv) -> (exit code, last stderr line)``: an entry point's ``main`` in-process,
    as in its own process minus the guardian (which would watch the test process)."""
    import contextlib
    import importlib

    from projects.core import entry, guardian

    monkeypatch.setattr(guardian, "enabled", contextlib.nullcontext)

    def call(module: str | object, argv: list[str]) -> tuple[int, str]:
        module = importlib.import_module(module) if isinstance(module, str) else module
        try:
            entry.main(module.Config, module.run, argv)
            code = 0
        except SystemExit as exc:
            code = exc.code
        lines = capsys.readouterr().err.strip().splitlines()
        return code, lines[-1] if lines else ""

    return call
