"""``create_trainer``: a :class:`Trainer` configured from a training config, without any tracking.

What the config decides: the optimiser and warmup + cosine schedule, the precision (``auto`` resolved
for the device), ``torch.compile`` (``auto``: on CUDA), and channels_last for conv nets. Entry points add
MLflow logging and checkpoints as callbacks (:func:`projects.core.fit.fit_in_run`); benchmarks use it bare.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from projects.core.loop import (
    BatchTransform,
    Callback,
    EvalFn,
    StepFn,
    Trainer,
    is_conv_net,
    resolve_precision,
)
from projects.core.optim import create_optimizer, create_scheduler
from projects.core.train_config import TrainConfig


def resolve_compile(choice: str, device: torch.device) -> bool:
    return choice == "true" or (choice == "auto" and device.type == "cuda")


def create_trainer(
    cfg: TrainConfig,
    model: nn.Module,
    train_loader: Iterable,
    step_fn: StepFn,
    *,
    evaluate: EvalFn | None,
    monitor: str | None,
    device: torch.device,
    callbacks: Sequence[Callback] = (),
    precision: str | None = None,
    progress: bool = True,
    batch_transform: BatchTransform | None = None,
    samples: str = "images",
) -> Trainer:
    """The Trainer for ``cfg``; ``precision`` overrides ``cfg.precision`` (e.g. fp32 for a linear probe).

    Compilation is in place (``nn.Module.compile``), so state_dict keys stay those of the eager model.
    """
    if resolve_compile(cfg.compile, device):
        model.compile()
    optimizer = create_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum)
    scheduler = create_scheduler(optimizer, cfg.epochs, len(train_loader), cfg.warmup_fraction)
    return Trainer(
        model,
        optimizer,
        train_loader,
        step_fn,
        epochs=cfg.epochs,
        scheduler=scheduler,
        evaluate=evaluate,
        callbacks=callbacks,
        device=device,
        precision=resolve_precision(precision or cfg.precision, device),
        monitor=monitor,
        progress=progress,
        batch_transform=batch_transform,
        channels_last=is_conv_net(model),
        samples=samples,
    )
