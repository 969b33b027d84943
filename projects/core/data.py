"""Datasets as uint8 NHWC arrays + labels: loading a split by name (:mod:`projects.core.datasets` holds
the registry), seeded class-stratified subsets, and the per-image ``Dataset`` of the workers pipeline.

Arrays (not PIL images) keep augmentation in albumentations/numpy and make fingerprints and
stratified subsets one line each. Splits are read-only (:class:`ImageArrays`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from projects.core.datasets import ImageArrays, get_dataset, resolve_image_size
from projects.core.errors import DataError

__all__ = [
    "LABEL_FRACTION_HELP",
    "ArrayDataset",
    "ImageArrays",
    "load_split",
    "num_classes",
    "split_train_val",
    "stratified_fraction",
    "to_tensor_normalized",
]

# Help of the ``label_fraction`` parameter of every classifier and probe (SimCLR's semi-supervised tables
# fine-tune on 1% and 10% of the labels: label_fraction=0.01 and 0.1).
LABEL_FRACTION_HELP = (
    "seeded, class-stratified share of the labelled training images, in (0, 1] (0.01 = 1%, at least one "
    "image per class)"
)


def load_split(
    name: str, split: str, data_dir: str | Path = "data", download: bool = True, image_size: int = 0
) -> ImageArrays:
    """One split of dataset ``name``, images uint8 (N, H, W, 3).

    ``image_size`` (0 = native) matters only to datasets without a native size (``folder``), whose images
    are resized to it on loading; the others load at their native size and the transforms resize.
    ``DataError`` naming the path and what to put there if the files are missing.
    """
    spec = get_dataset(name)
    if split not in spec.splits:
        raise DataError(f"{name} has splits {'/'.join(spec.splits)}, not {split!r}")
    size = resolve_image_size(name, image_size)
    root = Path(data_dir).expanduser()
    try:
        data = spec.load(split, root, download, size)
    except DataError:
        raise
    except (OSError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"{name} {split} split not found under {root.resolve()} and not downloadable ({reason}); "
            f"put {spec.source} or run with network and download=true"
        ) from None
    if spec.num_classes and len(data.classes) != spec.num_classes:
        raise DataError(
            f"{name} {split} split under {root.resolve()} names {len(data.classes)} classes, "
            f"not {spec.num_classes}"
        )
    return data


def num_classes(data: ImageArrays) -> int:
    """Classes of a labelled split (what a classifier head needs); ``DataError`` for unlabelled data."""
    if not data.classes:
        raise DataError(
            f"{data.name} has no labels (images without class folders): it serves pretraining only"
        )
    return len(data.classes)


def stratified_index(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted positions of a seeded selection of ``fraction`` of each label (at least one per label)."""
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        k = max(1, int(round(fraction * len(idx))))
        keep.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(keep))


def stratified_fraction(data: ImageArrays, fraction: float, seed: int) -> ImageArrays:
    """A seeded subset keeping ``fraction`` of each class (at least one image per class)."""
    if fraction >= 1.0:
        return data
    return data.subset(stratified_index(data.labels, fraction, seed), name=f"{data.name}[{fraction:g}]")


def split_train_val(data: ImageArrays, val_fraction: float, seed: int) -> tuple[ImageArrays, ImageArrays]:
    """A seeded, class-stratified train/val split of a training set."""
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(data.labels):
        idx = np.flatnonzero(data.labels == label)
        val.append(rng.choice(idx, size=max(1, int(round(val_fraction * len(idx)))), replace=False))
    val_index = np.sort(np.concatenate(val))
    train_index = np.setdiff1d(np.arange(len(data)), val_index)
    return data.subset(train_index, f"{data.name}-train"), data.subset(val_index, f"{data.name}-val")


class ArrayDataset(Dataset):
    """Applies ``transform`` (numpy HWC uint8 -> anything) to each image; yields (x, label)."""

    def __init__(self, data: ImageArrays, transform: Callable[[np.ndarray], Any]):
        self.data = data
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        return self.transform(self.data.images[index]), int(self.data.labels[index])


def to_tensor_normalized(dataset: str) -> Callable[[np.ndarray], torch.Tensor]:
    """Deterministic eval transform: HWC uint8 -> normalised CHW float tensor."""
    spec = get_dataset(dataset)
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in (spec.mean, spec.std))

    def transform(image: np.ndarray) -> torch.Tensor:
        x = torch.tensor(image).permute(2, 0, 1).float().div_(255)  # a copy: the split is read-only
        return (x - mean) / std

    return transform
