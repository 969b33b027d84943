"""An nerfstudio event writer that sends the training curves to the active MLflow run while it trains.

nerfstudio calls every writer in ``writer.EVENT_WRITERS`` from ``write_out_storage()`` once per step. We
keep events at every ``every``-th step (and all eval events), and send them with one ``log_batch`` every
few seconds, so a SQLite store costs well under 1% of a training step.
"""

from __future__ import annotations

import re
import time
from typing import Any

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

# nerfstudio event name -> MLflow metric name (prefix match, rest appended).
# Names follow projects.core.metrics: per-iteration (optimizer step) loss and learning rates as
# ``train_loss_step`` and ``lr/<param group>``; nerfstudio's other curves under ``train/`` and ``val/``.
RENAMES = (
    ("Train Loss Dict/", "train_loss_step/"),
    ("Train Loss", "train_loss_step"),
    ("Train Metrics Dict/", "train/"),
    ("learning_rate/", "lr/"),
    ("Train Rays / Sec", "train_rays_per_sec"),
    ("Train Iter (time)", "train/iter_seconds"),
    ("Test Rays / Sec", "val/rays_per_sec"),
    ("Eval Loss Dict/", "val/loss/"),
    ("Eval Loss", "val/loss"),
    ("Eval Metrics Dict/", "val/"),
    ("Eval Images Metrics Dict (all images)/", "val/all/"),
    ("Eval Images Metrics/", "val/image/"),
    ("GPU Memory (MB)", "gpu_memory_mb"),
)
SKIP = {"ETA (time)", "Train Total (time)"}
MAX_BATCH = 1000  # MLflow's log_batch limit on metrics per call


def metric_name(event: str) -> str:
    for prefix, name in RENAMES:
        if event.startswith(prefix):
            event = name + event[len(prefix) :]
            break
    return re.sub(r"[^\w./\- ]", "_", event)


class MlflowWriter:
    """Duck-types nerfstudio's ``Writer`` (write_scalar / write_scalar_dict / write_image / write_config)."""

    def __init__(self, every: int = 10, flush_seconds: float = 5.0, run_id: str | None = None) -> None:
        self.every = max(1, every)
        self.flush_seconds = flush_seconds
        self.run_id = run_id or mlflow.active_run().info.run_id
        self.client = MlflowClient()
        self.pending: list[Metric] = []
        self.last_flush = time.monotonic()

    def write_scalar(self, name: str, scalar: Any, step: int) -> None:
        # Training events come every step; eval events only every few hundred steps, so all are kept.
        per_step = name.startswith(("Train", "learning_rate", "GPU"))
        if name in SKIP or (per_step and step % self.every):
            return
        value = float(scalar.item() if hasattr(scalar, "item") else scalar)
        self.pending.append(Metric(metric_name(name), value, int(time.time() * 1000), int(step)))
        self.maybe_flush()

    def write_scalar_dict(self, name: str, scalar_dict: dict[str, Any], step: int) -> None:
        for key, value in scalar_dict.items():
            self.write_scalar(f"{name}/{key}", value, step)

    def write_image(self, name: str, image: Any, step: int) -> None:
        """Eval images are logged once at the end (test views beside ground truth), not per step."""

    def write_config(self, name: str, config_dict: dict[str, Any], step: int) -> None:
        """The run's params already hold the config; nerfstudio's config.yml is an artifact."""

    def maybe_flush(self) -> None:
        if time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        pending, self.pending = self.pending, []
        for i in range(0, len(pending), MAX_BATCH):
            self.client.log_batch(self.run_id, metrics=pending[i : i + MAX_BATCH], synchronous=True)


def attach(writer: MlflowWriter) -> None:
    """Register with nerfstudio's writer module; it is called from the training loop's main thread."""
    from nerfstudio.utils import writer as ns_writer

    ns_writer.EVENT_WRITERS.append(writer)


def detach(writer: MlflowWriter) -> None:
    from nerfstudio.utils import writer as ns_writer

    if writer in ns_writer.EVENT_WRITERS:
        ns_writer.EVENT_WRITERS.remove(writer)
    writer.flush()
