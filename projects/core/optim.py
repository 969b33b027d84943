"""Optimisers and schedules from timm: ``create_optimizer`` and a per-step warmup + cosine schedule."""

from __future__ import annotations

from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from torch import nn
from torch.optim import Optimizer

OPTIMIZERS = ("adamw", "adam", "sgd", "lars")


def create_optimizer(
    model: nn.Module, name: str, lr: float, weight_decay: float, momentum: float = 0.9
) -> Optimizer:
    """timm's factory; biases and norm weights get no weight decay (timm's default filtering)."""
    kwargs = {"momentum": momentum} if name in ("sgd", "lars") else {}
    return create_optimizer_v2(model, opt=name, lr=lr, weight_decay=weight_decay, **kwargs)


def create_scheduler(
    optimizer: Optimizer, epochs: int, steps_per_epoch: int, warmup_fraction: float, min_lr_ratio: float = 0.0
) -> CosineLRScheduler:
    """Linear warmup over ``warmup_fraction`` of the run's steps, then cosine decay, updated every step
    (``scheduler.step_update(global_step)``). A share, not a number of epochs: a short run is not mostly
    warmup."""
    total = max(1, epochs * steps_per_epoch)
    warmup = min(round(warmup_fraction * total), total - 1)
    base_lr = optimizer.param_groups[0]["lr"]
    return CosineLRScheduler(
        optimizer,
        t_initial=max(1, total - warmup),
        lr_min=base_lr * min_lr_ratio,
        warmup_t=warmup,
        warmup_lr_init=base_lr * 0.01 if warmup else base_lr,
        warmup_prefix=True,
        t_in_epochs=False,
    )
