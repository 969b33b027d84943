"""Train a model inside a tracked run: its parameter table, optimiser and schedule from the config, MLflow logging and
checkpoints (with resume) as the standard callbacks, the caller's callbacks (e.g. Optuna pruning) after.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import mlflow
import torch
from torch import nn

from projects.core.callbacks import Checkpointer, MLflowLogger
from projects.core.loop import Callback, EvalFn, StepFn, Trainer
from projects.core.models import log_model_summary
from projects.core.optim import create_optimizer, create_scheduler
from projects.core.tracking import TrackedRun
from projects.core.train_config import TrainConfig


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
) -> tuple[Trainer, dict[str, float]]:
    """Fit ``model`` for ``cfg.epochs``; returns the trainer (for ``best``) and the last epoch's values."""
    log_model_summary(model)
    optimizer = create_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum)
    scheduler = create_scheduler(optimizer, cfg.epochs, len(train_loader), cfg.warmup_epochs)
    trainer = Trainer(
        model,
        optimizer,
        train_loader,
        step_fn,
        epochs=cfg.epochs,
        scheduler=scheduler,
        evaluate=evaluate,
        callbacks=[MLflowLogger(tr.run_id), Checkpointer(tr.checkpoint_dir, resumed=tr.resumed), *callbacks],
        device=device,
        precision=precision or cfg.precision,
        monitor=monitor,
        progress=progress,
    )
    start = time.perf_counter()
    logs = trainer.fit()
    mlflow.log_metric("train_time_s", time.perf_counter() - start)
    return trainer, logs
