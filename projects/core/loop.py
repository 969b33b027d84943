"""The one training loop: ``Trainer.fit`` runs ``train_one_epoch`` + ``evaluate`` per epoch and reports
every per-step and per-epoch value through callbacks (MLflow logging, checkpoints, Optuna pruning).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

# step_fn(model, batch, device) -> (loss, number of images in the batch)
StepFn = Callable[[nn.Module, Any, torch.device], tuple[torch.Tensor, int]]
# evaluate(model) -> {"val_top1": ..., ...}
EvalFn = Callable[[nn.Module], dict[str, float]]
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """None means full precision. ``auto``: fp16 AMP on CUDA, fp32 on CPU."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    dtype = autocast_dtype(precision, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


class Callback:
    """Hooks of :class:`Trainer`; override what you need."""

    def on_fit_start(self, trainer: Trainer) -> None: ...

    def on_step_end(self, trainer: Trainer, logs: dict[str, float]) -> None: ...

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None: ...

    def on_fit_end(self, trainer: Trainer) -> None: ...


class Trainer:
    """Holds model, optimiser, schedule and progress; ``state_dict`` makes a run resumable."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        train_loader: Iterable,
        step_fn: StepFn,
        *,
        epochs: int,
        scheduler: Any = None,
        evaluate: EvalFn | None = None,
        callbacks: Sequence[Callback] = (),
        device: torch.device | str = "cpu",
        precision: str = "auto",
        monitor: str | None = None,
        mode: str = "max",
        log_every_n_steps: int = 10,
        progress: bool = True,
    ):
        self.model = model
        self.optimizer = optimizer
        self.train_loader = train_loader
        self.step_fn = step_fn
        self.epochs = epochs
        self.scheduler = scheduler
        self.evaluate = evaluate
        self.callbacks = list(callbacks)
        self.device = torch.device(device)
        self.precision = precision
        self.monitor = monitor
        self.mode = mode
        self.log_every_n_steps = log_every_n_steps
        self.progress = progress
        use_scaler = autocast_dtype(precision, self.device) == torch.float16 and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.epoch = 0  # completed epochs
        self.global_step = 0
        self.best: float | None = None
        self.is_best = False
        self.history: list[dict[str, float]] = []

    # -- state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best": self.best,
            "history": self.history,
            "rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.best = state["best"]
        self.history = list(state["history"])
        torch.set_rng_state(state["rng"])
        if self.scheduler is not None:
            self.scheduler.step_update(self.global_step)

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # -- loop --------------------------------------------------------------------------------------
    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def train_one_epoch(self) -> dict[str, float]:
        self.model.train()
        total_loss, total_images, steps = 0.0, 0, 0
        pending = torch.zeros((), device=self.device)
        bar = tqdm(
            self.train_loader,
            desc=f"epoch {self.epoch + 1}/{self.epochs}",
            leave=False,
            disable=not self.progress,
        )
        start = time.perf_counter()
        for batch in bar:
            if self.scheduler is not None:
                self.scheduler.step_update(self.global_step)
            with autocast(self.precision, self.device):
                loss, n_images = self.step_fn(self.model, batch, self.device)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.global_step += 1
            steps += 1
            total_images += n_images
            pending += loss.detach().float()
            # Reading the loss syncs the GPU: do it every log_every_n_steps, not every step.
            if self.global_step % self.log_every_n_steps == 0:
                value = float(pending) / self.log_every_n_steps
                if not math.isfinite(value):
                    raise FloatingPointError(f"loss is {value} at step {self.global_step}")
                total_loss += float(pending)
                pending.zero_()
                bar.set_postfix(loss=f"{value:.4f}", lr=f"{self.lr():.2e}")
                self._call("on_step_end", {"step_loss": value, "lr": self.lr()})
        total_loss += float(pending)
        elapsed = time.perf_counter() - start
        return {
            "train_loss": total_loss / max(1, steps),
            "lr": self.lr(),
            "images_per_sec": total_images / max(elapsed, 1e-9),
            "epoch_time_s": elapsed,
        }

    @torch.no_grad()
    def run_evaluation(self) -> dict[str, float]:
        if self.evaluate is None:
            return {}
        self.model.eval()
        with autocast(self.precision, self.device):
            return self.evaluate(self.model)

    def fit(self) -> dict[str, float]:
        """Train from ``self.epoch`` (0, or where a restored checkpoint left off) to ``self.epochs``."""
        self.model.to(self.device)
        self._call("on_fit_start")
        logs: dict[str, float] = self.history[-1] if self.history else {}
        while self.epoch < self.epochs:
            logs = self.train_one_epoch()
            logs.update(self.run_evaluation())
            self.epoch += 1
            self.is_best = False
            if self.monitor and self.monitor in logs and self._improved(logs[self.monitor]):
                self.best, self.is_best = logs[self.monitor], True
            self.history.append(logs)
            self._call("on_epoch_end", self.epoch, logs)
        self._call("on_fit_end")
        return logs


def seed_augmentation(dataset: Any, seed: int) -> None:
    """Seed the augmentation that ``dataset`` applies, found along its ``.transform`` chain.

    albumentations keeps its own RNG, not torch's: every DataLoader worker would otherwise start from
    the same copied state and draw the same crops and flips as its siblings, and runs would not repeat.
    """
    transform = getattr(dataset, "transform", None)
    while transform is not None and not hasattr(transform, "set_random_seed"):
        transform = getattr(transform, "transform", None)
    if transform is not None:
        transform.set_random_seed(seed % 2**32)


def _seed_worker(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    seed_augmentation(info.dataset, info.seed)  # torch derives info.seed from the loader's generator


def make_loader(
    dataset: Any, batch_size: int, shuffle: bool, num_workers: int, drop_last: bool = False, seed: int = 0
):
    """A DataLoader with a seeded shuffle, seeded augmentation per worker and persistent workers."""
    generator = torch.Generator().manual_seed(seed)
    if num_workers == 0:
        seed_augmentation(dataset, seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=generator,
        worker_init_fn=_seed_worker,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )
