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

from projects.core import distributed
from projects.core.checkpoint import load_checkpoint, save_checkpoint
from projects.core.errors import TrainingError
from projects.core.loop import Callback, Trainer

log = logging.getLogger(__name__)


class MLflowLogger(Callback):
    """Per-step and per-epoch values as MLflow metrics with steps.

    Step metrics are buffered and sent with ``log_batch`` once per epoch (and every ``flush_s``
    seconds), so tracking costs one request per epoch, not one per step. Epoch metrics use the
    number of epochs completed as their step; step metrics (``train_loss_step``, ``lr``) the optimizer step
    (:mod:`projects.core.metrics`).

    A resumed fit replays from its checkpoint; points at steps the run already has (logged after that
    checkpoint by the interrupted process) are not sent again, so every curve has one point per step.
    A failed send keeps the buffer and is retried at the next flush; only the final one must succeed.
    """

    def __init__(self, run_id: str | None = None, flush_s: float = 30.0):
        self.run_id = run_id or mlflow.active_run().info.run_id
        self.client = MlflowClient()
        self.flush_s = flush_s
        self.buffer: list[Metric] = []
        self.last_flush = time.monotonic()
        self.logged_until: dict[str, int] = {}  # metric key -> last step the run already has

    def _flush(self, final: bool = False) -> None:
        try:
            while self.buffer:
                chunk = self.buffer[:1000]  # MLflow's log_batch limit
                self.client.log_batch(self.run_id, metrics=chunk, synchronous=True)
                del self.buffer[:1000]
        except Exception as exc:
            if final:
                raise
            log.warning("could not send %d metric values (%s); will retry", len(self.buffer), exc)
        self.last_flush = time.monotonic()

    def _add(self, logs: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        for key, value in logs.items():
            if step > self.logged_until.get(key, -1):
                self.buffer.append(Metric(key, float(value), now, step))

    def on_fit_start(self, trainer: Trainer) -> None:
        # (Runs before the checkpoint is restored: a fresh run simply has no metrics yet.)
        for key in self.client.get_run(self.run_id).data.metrics:
            history = self.client.get_metric_history(self.run_id, key)
            self.logged_until[key] = max((m.step for m in history), default=-1)

    def on_step_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        self._add(logs, trainer.global_step)
        if time.monotonic() - self.last_flush > self.flush_s:
            self._flush()

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        self._add(logs, epoch)
        self._flush()

    def on_interrupt(self, trainer: Trainer) -> None:
        self._flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        self._flush(final=True)


class Checkpointer(Callback):
    """``last.pt`` every epoch and ``best.pt`` when the monitored metric improves, written atomically and
    logged as artifacts under ``checkpoints/``. On fit start, restores ``last.pt`` if the run has one
    (locally, or as an artifact of the run being resumed).

    Under ``torchrun`` every rank has one: rank 0 reads and writes the files and sends the restored state
    to the others; every rank takes part in building the state to save (it holds each rank's RNGs)."""

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

    def _read(self) -> dict[str, Any] | None:
        # Temp files of a write that a killed process never finished (they are never loaded).
        for stale in self.directory.glob(".*.pt.*.tmp") if self.directory.is_dir() else ():
            stale.unlink(missing_ok=True)
        self._fetch_remote()
        return load_checkpoint(self.last) if self.last.exists() else None

    def on_fit_start(self, trainer: Trainer) -> None:
        state = distributed.broadcast(self._read() if distributed.is_main() else None)
        if state is not None:
            trainer.load_state_dict(state)
            self.restored_epoch = trainer.epoch
            log.info("resumed from %s at epoch %d", self.last, trainer.epoch)

    def _log_artifact(self, path: Path) -> None:
        if not self.log_artifacts or mlflow.active_run() is None:
            return
        try:
            mlflow.log_artifact(str(path), "checkpoints")
        except Exception as exc:  # the store is full, unwritable or gone: the local checkpoint is kept
            raise TrainingError(
                f"cannot copy {path} to the run's artifact store ({type(exc).__name__}: {exc}); the local "
                "checkpoint is kept: fix the store and re-run the same command to resume"
            ) from None

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        state = trainer.state_dict()
        if not distributed.is_main():
            return
        save_checkpoint({**state, **self.extra_state}, self.last)
        if trainer.is_best:
            save_checkpoint({"model": trainer.model.state_dict(), "epoch": epoch, "logs": logs}, self.best)
        self._log_artifact(self.last)
        if trainer.is_best:
            self._log_artifact(self.best)

    def on_interrupt(self, trainer: Trainer) -> None:
        """The state at the step the stop arrived at: a resume loses no finished step."""
        state = trainer.state_dict()
        if not distributed.is_main():
            return
        save_checkpoint({**state, **self.extra_state}, self.last)
        log.info("saved %s at step %d (epoch %d)", self.last, trainer.global_step, trainer.epoch + 1)
        self._log_artifact(self.last)


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
