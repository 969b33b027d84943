"""Datasets as uint8 NHWC arrays + labels, loaded with torchvision's dataset classes.

Arrays (not PIL images) keep augmentation in albumentations/numpy and make fingerprints and
stratified subsets one line each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import datasets as tvd

from projects.core import synthetic
from projects.core.errors import DataError

DATASETS = ("cifar10", "cifar100", "stl10", "synthetic")
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "stl10": 10, "synthetic": 10}
IMAGE_SIZE = {"cifar10": 32, "cifar100": 32, "stl10": 96, "synthetic": 32}
MEAN_STD = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "stl10": ((0.4467, 0.4398, 0.4066), (0.2603, 0.2566, 0.2713)),
    "synthetic": ((0.5, 0.5, 0.5), (0.3, 0.3, 0.3)),
}
SPLITS = {"train", "test", "unlabeled", "train+unlabeled"}
SYNTHETIC_SIZES = {"train": 5000, "test": 1000}
# What to put under data_dir when offline, and where it comes from.
EXPECTED_FILES = {
    "cifar10": ("cifar-10-batches-py/", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "cifar100": ("cifar-100-python/", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
    "stl10": ("stl10_binary/", "https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"),
}


@dataclass(frozen=True)
class ImageArrays:
    images: np.ndarray  # uint8, (N, H, W, 3)
    labels: np.ndarray  # int64, (N,); -1 where unlabelled
    name: str
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray, name: str | None = None) -> ImageArrays:
        return ImageArrays(self.images[index], self.labels[index], name or self.name, self.classes)

    def concat(self, other: ImageArrays) -> ImageArrays:
        """A new set holding both; neither input changes."""
        return ImageArrays(
            np.concatenate([self.images, other.images]),
            np.concatenate([self.labels, other.labels]),
            f"{self.name}+{other.name}",
            self.classes,
        )


# torchvision verifies md5 sums of the official archives' files. With md5=None its own check_integrity
# tests that each file exists and unpickling/reading validates it, so a local copy (or a test's tiny file)
# in the official on-disk format loads through the very same torchvision code. Downloads still check md5.
def _no_md5(files: list[list[str]]) -> list[list[str | None]]:
    return [[name, None] for name, _ in files]


class _CIFAR10(tvd.CIFAR10):
    train_list = _no_md5(tvd.CIFAR10.train_list)
    test_list = _no_md5(tvd.CIFAR10.test_list)
    meta = {**tvd.CIFAR10.meta, "md5": None}


class _CIFAR100(tvd.CIFAR100):
    train_list = _no_md5(tvd.CIFAR100.train_list)
    test_list = _no_md5(tvd.CIFAR100.test_list)
    meta = {**tvd.CIFAR100.meta, "md5": None}


class _STL10(tvd.STL10):
    train_list = _no_md5(tvd.STL10.train_list)
    test_list = _no_md5(tvd.STL10.test_list)


def _torchvision_split(name: str, split: str, root: Path, download: bool) -> ImageArrays:
    if name in ("cifar10", "cifar100"):
        cls = _CIFAR10 if name == "cifar10" else _CIFAR100
        if split not in ("train", "test"):
            raise DataError(f"{name} has splits train/test, not {split!r}")
        ds = cls(str(root), train=split == "train", download=download)
        return ImageArrays(
            np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64), name, list(ds.classes)
        )
    ds = _STL10(str(root), split=split, download=download)
    images = np.ascontiguousarray(np.asarray(ds.data).transpose(0, 2, 3, 1))  # NCHW -> NHWC
    return ImageArrays(images, np.asarray(ds.labels, dtype=np.int64), name, list(ds.classes))


def load_split(name: str, split: str, data_dir: str | Path = "data", download: bool = True) -> ImageArrays:
    """One split of a dataset; ``DataError`` with the path and what to put there if it is missing."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    if name == "synthetic":
        base = split.split("+")[0]
        size = SYNTHETIC_SIZES.get(base, SYNTHETIC_SIZES["train"])
        images, labels = synthetic.make_synthetic(size, seed={"train": 0, "test": 1}.get(base, 2))
        return ImageArrays(images, labels, name, list(synthetic.CLASSES))
    root = Path(data_dir).expanduser()
    try:
        return _torchvision_split(name, split, root, download)
    except DataError:
        raise
    except (OSError, RuntimeError) as exc:
        folder, url = EXPECTED_FILES[name]
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"{name} {split} split not found under {root.resolve()} and not downloadable ({reason}); "
            f"put {folder} there (extracted from {url}) or run with network and download=true"
        ) from None


def stratified_fraction(data: ImageArrays, fraction: float, seed: int) -> ImageArrays:
    """A seeded subset keeping ``fraction`` of each class (at least one image per class)."""
    if fraction >= 1.0:
        return data
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(data.labels):
        idx = np.flatnonzero(data.labels == label)
        k = max(1, int(round(fraction * len(idx))))
        keep.append(rng.choice(idx, size=k, replace=False))
    index = np.sort(np.concatenate(keep))
    return data.subset(index, name=f"{data.name}[{fraction:g}]")


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
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in MEAN_STD[dataset])

    def transform(image: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255)
        return (x - mean) / std

    return transform
