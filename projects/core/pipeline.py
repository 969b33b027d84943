"""How images reach the model: the whole split on the device (``pipeline=device``) or DataLoader workers
(``pipeline=workers``); augmentation per batch on the device (``augment=batched``) or per image by
albumentations in the workers (``augment=albumentations``, the reference implementation).

With ``pipeline=device`` a split is one uint8 NCHW tensor on the training device (GPU memory under CUDA;
on CPU the numpy array itself, without a copy) and :class:`DeviceBatches` yields index batches from a
seeded permutation: no per-image Python on the hot path. Splits too large for the GPU fall back to
workers that only collate uint8 images; the batched augmentation then runs on the device all the same.

Under ``torchrun`` each rank trains on its own shard of every epoch's order (as ``DistributedSampler``
shards it: the same seeded permutation everywhere, rank r taking every world-size-th index), so the ranks'
batches of one step together are the batch of one process with world-size x ``batch_size`` images.
Evaluation batches are not sharded: every rank evaluates the whole split.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from projects.core import distributed
from projects.core.config import check
from projects.core.data import ArrayDataset, ImageArrays
from projects.core.loop import make_loader

PIPELINES = ("auto", "device", "workers")
AUGMENTS = ("batched", "albumentations")
# Share of the free GPU memory a dataset may take with pipeline=auto; the rest is for training.
DEVICE_MEMORY_SHARE = 0.25


def feed_options(cfg: Any, device: torch.device) -> dict[str, Any]:
    """The keyword arguments of :func:`train_loader` / :func:`eval_loader` that a training config sets."""
    return {
        "pipeline": cfg.pipeline,
        "augment": cfg.augment,
        "num_workers": cfg.num_workers,
        "device": device,
    }


def images_to_tensor(data: ImageArrays) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, 3, H, W) images and int64 labels; a view of the numpy arrays (NHWC memory = channels_last).

    The split's arrays are read-only and torch has no read-only tensors: it warns about every such view.
    These views are only ever read (batches are indexed copies, ``.to(device)`` copies), so the warning
    is silenced here instead of copying a whole split.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="The given NumPy array is not writable", category=UserWarning
        )
        return torch.from_numpy(data.images).permute(0, 3, 1, 2), torch.from_numpy(data.labels)


def uint8_chw(image: np.ndarray) -> torch.Tensor:
    """Per-image transform of the workers path with batched augmentation: HWC uint8 -> CHW uint8 (a copy,
    so the read-only split is never shared with the batch)."""
    return torch.from_numpy(image.transpose(2, 0, 1).copy())


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    if device.type != "cuda":
        return True  # the split is already in host memory
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_MEMORY_SHARE * free


def resolve_pipeline(pipeline: str, augment: str, nbytes: int, device: torch.device) -> str:
    """``auto`` -> ``device`` when the split fits and augmentation is batched, else ``workers``."""
    check(
        not (pipeline == "device" and augment == "albumentations"),
        "augment=albumentations runs per image in DataLoader workers; use pipeline=workers (or auto)",
    )
    if pipeline != "auto":
        return pipeline
    return "device" if augment == "batched" and fits_on_device(nbytes, device) else "workers"


class DeviceBatches:
    """Batches of a split held on the device: (images[idx], labels[idx]) for seeded index batches.

    The permutation generator's state is part of ``state_dict``, so a run resumed at an epoch boundary
    sees the same order as an uninterrupted one. ``transform`` (optional) maps each image batch.
    ``rank``/``world_size``: this process's shard of each permutation (padded by wrapping around to equal
    shards unless ``drop_last``, as ``DistributedSampler`` does).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool,
        drop_last: bool = False,
        seed: int = 0,
        device: torch.device | str = "cpu",
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = torch.Generator().manual_seed(seed)
        self.transform = transform

    def _shard_size(self) -> int:
        n = len(self.labels)
        return n // self.world_size if self.drop_last else math.ceil(n / self.world_size)

    def __len__(self) -> int:
        n = self._shard_size()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        if self.world_size > 1:
            total = self._shard_size() * self.world_size
            order = torch.cat([order, order[: max(0, total - n)]])[:total][self.rank :: self.world_size]
        order = order.to(self.device)
        for k in range(len(self)):
            index = order[k * self.batch_size : (k + 1) * self.batch_size]
            images = self.images[index]
            yield (self.transform(images) if self.transform else images), self.labels[index]

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


def train_loader(
    data: ImageArrays,
    *,
    pipeline: str,
    augment: str,
    per_image: Callable[[np.ndarray], Any],
    batch_size: int,
    num_workers: int,
    device: torch.device,
    seed: int,
    drop_last: bool,
):
    """The training batches: uint8 images for ``augment=batched`` (augmented later, on the device, by the
    Trainer's ``batch_transform``), ``per_image``-augmented tensors for ``augment=albumentations``."""
    if augment == "albumentations":
        dataset = ArrayDataset(data, per_image)
        return make_loader(dataset, batch_size, True, num_workers, drop_last=drop_last, seed=seed)
    if resolve_pipeline(pipeline, augment, data.images.nbytes, device) == "device":
        images, labels = images_to_tensor(data)
        return DeviceBatches(
            images,
            labels,
            batch_size,
            shuffle=True,
            drop_last=drop_last,
            seed=seed,
            device=device,
            rank=distributed.rank(),
            world_size=distributed.world_size(),
        )
    return make_loader(
        ArrayDataset(data, uint8_chw), batch_size, True, num_workers, drop_last=drop_last, seed=seed
    )


def eval_loader(
    data: ImageArrays,
    *,
    pipeline: str,
    augment: str,
    per_image: Callable[[np.ndarray], Any],
    normalize: Callable[[torch.Tensor], torch.Tensor],
    num_workers: int,
    device: torch.device,
    batch_size: int = 512,
):
    """Un-augmented, normalised batches in order: on the device where the training split is, else workers."""
    if resolve_pipeline(pipeline, augment, data.images.nbytes, device) == "device":
        images, labels = images_to_tensor(data)
        return DeviceBatches(images, labels, batch_size, shuffle=False, device=device, transform=normalize)
    return make_loader(ArrayDataset(data, per_image), batch_size, False, num_workers)
