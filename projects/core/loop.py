"""The one training loop: ``Trainer.fit`` runs ``train_one_epoch`` + ``evaluate`` per epoch and reports
every per-step and per-epoch value through callbacks (MLflow logging, checkpoints, Optuna pruning).

A training step has explicit stages: the batch moves to the device, ``batch_transform`` runs there
(batched augmentation, two SSL views, CutMix/Mixup), ``step_fn`` computes the loss under autocast, the
optimiser steps, then ``on_optimizer_step`` runs (e.g. momentum encoders), and every
``log_every_n_steps`` steps (and at the end of every epoch) ``on_step_end`` receives the mean loss of the
steps since its last call, for logging.

Interruptions: a stop signal takes effect between steps; ``on_interrupt`` lets the checkpoint callback
save the state at that step (with how many steps of the epoch are done), and a resumed fit skips those
batches of the same epoch order, so it continues exactly where it stopped.

Under ``torchrun`` (:mod:`projects.core.distributed`) the same loop runs in every process: the model is
wrapped in ``DistributedDataParallel`` after ``on_fit_start`` (where every rank receives the state rank 0
restored), logged losses are means over the ranks, evaluation results are rank 0's, and a stop is agreed
on at every step so that all ranks stop at the same one.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from projects.core import distributed, signals
from projects.core.errors import CheckpointError, TrainingError

# step_fn(model, batch on the device, after batch_transform) -> (loss, number of images in the batch)
StepFn = Callable[[nn.Module, Any], tuple[torch.Tensor, int]]
# evaluate(model) -> {"val_top1": ..., ...}
EvalFn = Callable[[nn.Module], dict[str, float]]
BatchTransform = Callable[[Any], Any]
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available; under ``torchrun``, the GPU of this process's local rank."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return distributed.device_for(torch.device(name))


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 instructions (AVX512-BF16 or AMX).

    oneDNN also runs bf16 on plain AVX512 by emulation, but there a ResNet-18 step measured 2.4x slower
    than fp32, so only native support counts.
    """
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16 on CUDA GPUs that have it (Ampere or newer) and on CPUs with bf16 kernels, fp16 with a
    gradient scaler on older GPUs, fp32 otherwise."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_bf16() else "fp32"


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """None means full precision."""
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[resolve_precision(precision, device)]


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    dtype = autocast_dtype(precision, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def is_conv_net(model: nn.Module) -> bool:
    """True when most parameters sit in 2-d convolutions (ResNets; not ViTs): these run channels_last."""
    conv = sum(p.numel() for m in model.modules() if isinstance(m, nn.Conv2d) for p in m.parameters(False))
    total = sum(p.numel() for p in model.parameters())
    return total > 0 and conv / total > 0.5


def to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move every tensor of a (nested) batch to ``device``; float images become channels_last if asked."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.ndim == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device, channels_last) for b in batch)
    return batch


class Callback:
    """Hooks of :class:`Trainer`; override what you need."""

    def on_fit_start(self, trainer: Trainer) -> None: ...

    def on_optimizer_step(self, trainer: Trainer) -> None:
        """After every optimiser step (momentum encoders, EMA weights)."""

    def on_step_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        """Every ``log_every_n_steps`` steps, with the mean loss since the last call and the lr."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None: ...

    def on_interrupt(self, trainer: Trainer) -> None:
        """SIGINT/SIGTERM stopped the fit at a step boundary (``trainer.step_in_epoch`` steps into the epoch)."""

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
        batch_transform: BatchTransform | None = None,
        channels_last: bool = False,
        samples: str = "images",
    ):
        self.model = model
        self.train_model = model  # what the steps call: ``model`` in DistributedDataParallel under torchrun
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
        self.progress = progress and distributed.is_main()  # one progress bar per job
        self.batch_transform = batch_transform
        self.channels_last = channels_last
        # What one training sample is (``images``; ``features`` for a probe on cached features): the
        # throughput metric is ``train_<samples>_per_sec``.
        self.samples = samples
        use_scaler = autocast_dtype(precision, self.device) == torch.float16 and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.epoch = 0  # completed epochs
        self.global_step = 0
        self.step_in_epoch = 0  # optimiser steps done in the current epoch (a mid-epoch checkpoint has > 0)
        self.epoch_loss = 0.0  # sum of the step losses of the current epoch
        self.epoch_images = 0
        self._data_state: dict[str, Any] | None = None
        self.best: float | None = None
        self.is_best = False
        self.history: list[dict[str, float]] = []

    # -- state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The whole training state; under ``torchrun`` a collective call (every rank's random states are
        gathered into ``ranks``), so every rank calls it at the same point."""
        own = {
            "rng": torch.get_rng_state(),
            "numpy_rng": _numpy_rng_state(),  # timm's Mixup/CutMix draw from numpy's global RNG
            "batch_transform": _state_of(self.batch_transform),
        }
        ranks = distributed.gather_objects(own) if distributed.active() else None
        return {
            **own,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best": self.best,
            "history": self.history,
            "step_in_epoch": self.step_in_epoch,
            "epoch_loss": self.epoch_loss,
            "epoch_images": self.epoch_images,
            # Mid-epoch: the loader's state at the epoch's start (its order is drawn again, the done
            # batches skipped); at an epoch boundary its state now.
            "data": self._data_state if self.step_in_epoch else _state_of(self.train_loader),
            "world_size": distributed.world_size(),
            **({"ranks": ranks} if ranks else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = int(state.get("world_size", 1))
        if saved != distributed.world_size():
            raise CheckpointError(
                f"the checkpoint was written by {saved} training process(es), this run has "
                f"{distributed.world_size()}: resume with nproc_per_node={saved}, or pass resume=false"
            )
        own = state["ranks"][distributed.rank()] if "ranks" in state else state
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.step_in_epoch = int(state.get("step_in_epoch", 0))
        self.epoch_loss = float(state.get("epoch_loss", 0.0))
        self.epoch_images = int(state.get("epoch_images", 0))
        self.best = state["best"]
        self.history = list(state["history"])
        torch.set_rng_state(own["rng"])
        if "numpy_rng" in own:
            _set_numpy_rng_state(own["numpy_rng"])
        for obj, part in (
            (self.train_loader, state.get("data")),
            (self.batch_transform, own.get("batch_transform")),
        ):
            if part is not None and hasattr(obj, "load_state_dict"):
                obj.load_state_dict(part)
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

    def prepare_batch(self, batch: Any) -> Any:
        """To the device, then ``batch_transform`` there (augmentation, views, CutMix), then channels_last."""
        batch = to_device(batch, self.device)
        if self.batch_transform is not None:
            batch = self.batch_transform(batch)
        if self.channels_last:
            batch = to_device(batch, self.device, channels_last=True)
        return batch

    def train_step(self, batch: Any) -> tuple[torch.Tensor, int]:
        """Loss under autocast, backward, optimiser step, for a batch already on the device and transformed."""
        with autocast(self.precision, self.device):
            loss, n_images = self.step_fn(self.train_model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss, n_images

    def _check_finite(self, value: float) -> None:
        if not math.isfinite(value):
            raise TrainingError(
                f"loss is {value} at step {self.global_step} (epoch {self.epoch + 1}): training diverged; "
                f"lower lr (now {self.lr():.3g}) or warm up longer"
                + (f", or use precision=fp32 (now {self.precision})" if self.precision != "fp32" else "")
                + "; the last checkpoint is from before the divergence"
            )

    def train_one_epoch(self) -> dict[str, float]:
        """Train the current epoch from ``step_in_epoch`` on (0, or where a mid-epoch checkpoint stopped)."""
        self.model.train()
        skip = self.step_in_epoch
        pending = torch.zeros((), device=self.device)
        pending_steps = 0
        bar = tqdm(
            total=len(self.train_loader) if hasattr(self.train_loader, "__len__") else None,
            initial=skip,
            desc=f"epoch {self.epoch + 1}/{self.epochs}",
            leave=False,
            disable=not self.progress,
        )
        self._data_state = _state_of(self.train_loader)  # before iter() draws this epoch's order
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # DistributedSampler: this epoch's shard of its seeded order
            sampler.set_epoch(self.epoch)
        start, images_before = time.perf_counter(), self.epoch_images
        try:
            with signals.deferred():  # a stop request waits for the step in flight
                for batch in itertools.islice(self.train_loader, skip, None):
                    if self.scheduler is not None:
                        self.scheduler.step_update(self.global_step)
                    loss, n_images = self.train_step(self.prepare_batch(batch))
                    self.global_step += 1
                    self.step_in_epoch += 1
                    self.epoch_images += n_images
                    self._call("on_optimizer_step")
                    pending += loss.detach().float()
                    pending_steps += 1
                    bar.update()
                    stop = signals.poll()
                    # Reading the loss syncs the GPU: do it every log_every_n_steps, at the epoch's end, and
                    # before a requested stop (so that the checkpoint's epoch loss covers every step done).
                    if self.global_step % self.log_every_n_steps == 0 or stop:
                        self._log_steps(pending, pending_steps, bar)
                        pending.zero_()
                        pending_steps = 0
                    if stop:
                        signals.stop(stop)
                if pending_steps:
                    self._log_steps(pending, pending_steps, bar)
        finally:
            bar.close()  # also on an error: its line must not swallow the error message
        elapsed = time.perf_counter() - start
        steps = max(1, self.step_in_epoch)
        return {
            "train_loss": self.epoch_loss / steps,
            # every rank trains on as many images per step as this one
            f"train_{self.samples}_per_sec": (self.epoch_images - images_before)
            * distributed.world_size()
            / max(elapsed, 1e-9),
            "epoch_time_s": elapsed,
        }

    def _log_steps(self, pending: torch.Tensor, steps: int, bar: Any) -> None:
        """``pending``: the sum of the last ``steps`` losses; logged as their mean over the steps and ranks."""
        loss_sum = float(distributed.mean(pending))
        value = loss_sum / steps
        self._check_finite(value)
        self.epoch_loss += loss_sum
        bar.set_postfix(loss=f"{value:.4f}", lr=f"{self.lr():.2e}")
        self._call("on_step_end", {"train_loss_step": value, "lr": self.lr()})

    @torch.no_grad()
    def run_evaluation(self) -> dict[str, float]:
        if self.evaluate is None:
            return {}
        self.model.eval()
        with autocast(self.precision, self.device):
            return self.evaluate(self.model)

    def fit(self) -> dict[str, float]:
        """Train from ``self.epoch`` (0, or where a restored checkpoint left off) to ``self.epochs``.

        SIGINT/SIGTERM (:mod:`projects.core.signals`) stop it after the step in flight (or during the
        evaluation); ``on_interrupt`` then lets the callbacks save that state before the stop propagates.
        """
        self.model.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._call("on_fit_start")
        self.train_model = distributed.wrap(self.model, self.device)
        logs: dict[str, float] = self.history[-1] if self.history else {}
        with (
            signals.synchronized(distributed.agree_on_stop)
            if distributed.active()
            else contextlib.nullcontext()
        ):
            logs = self._fit_epochs(logs)
        self._call("on_fit_end")
        return logs

    def _fit_epochs(self, logs: dict[str, float]) -> dict[str, float]:
        try:
            while self.epoch < self.epochs:
                logs = self.train_one_epoch()
                logs.update(self.run_evaluation())
                logs = distributed.broadcast(logs)  # rank 0's figures decide best and pruning everywhere
                stop = signals.poll()
                if stop:
                    signals.stop(stop)
                with signals.deferred():
                    self.epoch += 1
                    self.step_in_epoch, self.epoch_loss, self.epoch_images = 0, 0.0, 0
                    self._data_state = None
                    self.is_best = False
                    if self.monitor and self.monitor in logs and self._improved(logs[self.monitor]):
                        self.best, self.is_best = logs[self.monitor], True
                    self.history.append(logs)
                    self._call("on_epoch_end", self.epoch, logs)
        except KeyboardInterrupt:
            self._call("on_interrupt")
            raise
        return logs


def _numpy_rng_state() -> dict[str, Any]:
    """numpy's global RNG state as tensors and numbers (checkpoints load with ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": pos,
        "has_gauss": has_gauss,
        "cached": cached,
    }


def _set_numpy_rng_state(state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["pos"], state["has_gauss"], state["cached"]))


def _state_of(obj: Any) -> dict[str, Any] | None:
    return obj.state_dict() if hasattr(obj, "state_dict") and not isinstance(obj, nn.Module) else None


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
    """A DataLoader with a seeded shuffle, seeded augmentation per worker and persistent workers.

    Under ``torchrun`` a shuffled loader draws this rank's shard of each epoch (``DistributedSampler``;
    the Trainer sets its epoch) and each rank seeds its augmentation differently.
    """
    generator = torch.Generator().manual_seed(distributed.rank_seed(seed))
    if num_workers == 0:
        seed_augmentation(dataset, distributed.rank_seed(seed))
    sampler = None
    if shuffle and distributed.active():
        from torch.utils.data import DistributedSampler

        sampler = DistributedSampler(dataset, shuffle=True, seed=seed, drop_last=drop_last)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=generator,
        worker_init_fn=_seed_worker,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )
