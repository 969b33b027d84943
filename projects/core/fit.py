"""Train a model inside a tracked run: its parameter table, optimiser and schedule from the config, MLflow logging and
checkpoints (with resume) as the standard callbacks, the caller's callbacks (e.g. Optuna pruning) after.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import mlflow
import torch
from torch import nn

from projects.core import distributed
from projects.core.callbacks import Checkpointer, MLflowLogger
from projects.core.loop import BatchTransform, Callback, EvalFn, StepFn, Trainer
from projects.core.models import log_model_summary
from projects.core.tracking import TrackedRun
from projects.core.train_config import TrainConfig
from projects.core.trainer_factory import create_trainer, resolve_compile


def fit_in_run(
    tr: TrackedRun,
    cfg: TrainConfig,
    model: nn.Module,
    train_loader: Iterable,
    step_fn: StepFn,
    *,
    evaluate: EvalFn,
    monitor: str,
    device: torch.device,
    callbacks: Sequence[Callback] = (),
    precision: str | None = None,
    progress: bool = True,
    batch_transform: BatchTransform | None = None,
    samples: str = "images",
) -> tuple[Trainer, dict[str, float]]:
    """Fit ``model`` for ``cfg.epochs``; returns the trainer (for ``best``) and the last epoch's values.

    The resolved precision, compilation and memory format are logged as tags. Under ``torchrun`` every
    rank trains; rank 0 alone logs (``tr.main``).
    """
    if tr.main:
        log_model_summary(model)
    if getattr(cfg, "sync_bn", False):
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    logger = [MLflowLogger(tr.run_id)] if tr.main else []
    trainer = create_trainer(
        cfg,
        model,
        train_loader,
        step_fn,
        evaluate=evaluate,
        monitor=monitor,
        device=device,
        callbacks=[*logger, Checkpointer(tr.checkpoint_dir, resumed=tr.resumed), *callbacks],
        precision=precision,
        progress=progress,
        batch_transform=batch_transform,
        samples=samples,
    )
    if tr.main:
        mlflow.set_tags(
            {
                "precision": trainer.precision,
                "channels_last": str(trainer.channels_last).lower(),
                "compiled": str(resolve_compile(cfg.compile, device)).lower(),
                "distributed.world_size": str(distributed.world_size()),
                "distributed.backend": distributed.backend(),
            }
        )
    start = time.perf_counter()
    logs = trainer.fit()
    if tr.main:
        mlflow.log_metric("train_time_s", time.perf_counter() - start)
    return trainer, logs
