"""Callbacks on the training loop's one reporting path: MLflow curves, checkpoints, Optuna pruning."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from projects.core.checkpoint import load_checkpoint, save_checkpoint
from projects.core.loop import Callback, Trainer

log = logging.getLogger(__name__)


class MLflowLogger(Callback):
    """Per-step and per-epoch values as MLflow metrics with steps.

    Step metrics are buffered and sent with ``log_batch`` once per epoch (and every ``flush_s``
    seconds), so tracking costs one request per epoch, not one per step. Epoch metrics use the
    epoch number as their step; step metrics (``step_loss``, ``step_lr``) the global step.
    """

    def __init__(self, run_id: str | None = None, flush_s: float = 30.0):
        self.run_id = run_id or mlflow.active_run().info.run_id
        self.client = MlflowClient()
        self.flush_s = flush_s
        self.buffer: list[Metric] = []
        self.last_flush = time.monotonic()

    def _flush(self) -> None:
        for i in range(0, len(self.buffer), 1000):  # MLflow's log_batch limit
            self.client.log_batch(self.run_id, metrics=self.buffer[i : i + 1000], synchronous=True)
        self.buffer.clear()
        self.last_flush = time.monotonic()

    def _add(self, logs: dict[str, float], step: int, prefix: str = "") -> None:
        now = int(time.time() * 1000)
        self.buffer.extend(Metric(f"{prefix}{k}", float(v), now, step) for k, v in logs.items())

    def on_step_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        self._add({"loss": logs["step_loss"], "lr": logs["lr"]}, trainer.global_step, prefix="step_")
        if time.monotonic() - self.last_flush > self.flush_s:
            self._flush()

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        self._add(logs, epoch)
        self._flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        self._flush()


class Checkpointer(Callback):
    """``last.pt`` every epoch and ``best.pt`` when the monitored metric improves, written atomically and
    logged as artifacts under ``checkpoints/``. On fit start, restores ``last.pt`` if the run has one
    (locally, or as an artifact of the run being resumed)."""

    def __init__(
        self,
        directory: str | Path,
        extra_state: dict[str, Any] | None = None,
        log_artifacts: bool = True,
        resumed: bool = False,
    ):
        self.directory = Path(directory)
        self.resumed = resumed
        self.extra_state = extra_state or {}
        self.log_artifacts = log_artifacts
        self.restored_epoch: int | None = None

    @property
    def last(self) -> Path:
        return self.directory / "last.pt"

    @property
    def best(self) -> Path:
        return self.directory / "best.pt"

    def _fetch_remote(self) -> None:
        if self.last.exists() or not self.resumed or mlflow.active_run() is None:
            return
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=mlflow.active_run().info.run_id, artifact_path="checkpoints/last.pt"
            )
        except Exception:  # no checkpoint artifact: nothing to resume
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, self.last)

    def on_fit_start(self, trainer: Trainer) -> None:
        self._fetch_remote()
        if self.last.exists():
            state = load_checkpoint(self.last)
            trainer.load_state_dict(state)
            self.restored_epoch = trainer.epoch
            log.info("resumed from %s at epoch %d", self.last, trainer.epoch)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        save_checkpoint({**trainer.state_dict(), **self.extra_state}, self.last)
        if trainer.is_best:
            save_checkpoint({"model": trainer.model.state_dict(), "epoch": epoch, "logs": logs}, self.best)
        if self.log_artifacts and mlflow.active_run() is not None:
            mlflow.log_artifact(str(self.last), "checkpoints")
            if trainer.is_best:
                mlflow.log_artifact(str(self.best), "checkpoints")


class OptunaPruning(Callback):
    """Reports the monitored per-epoch value to an Optuna trial and raises ``TrialPruned`` when told."""

    def __init__(self, trial: Any, monitor: str):
        self.trial = trial
        self.monitor = monitor

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        import optuna

        if self.monitor not in logs:
            raise KeyError(f"pruning monitors {self.monitor!r} but the epoch logged only {sorted(logs)}")
        self.trial.report(logs[self.monitor], step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch} ({self.monitor}={logs[self.monitor]:.4f})")
