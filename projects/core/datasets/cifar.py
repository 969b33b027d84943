"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009): 32x32 colour images, 50k train / 10k test, loaded by
torchvision from the official pickled batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torchvision import datasets as tvd

from projects.core.datasets.base import DatasetSpec, ImageArrays, Loader, archive_source, register_dataset


# torchvision verifies md5 sums of the official archives' files. With md5=None its own check_integrity
# tests that each file exists and unpickling/reading validates it, so a local copy (or a test's tiny file)
# in the official on-disk format loads through the very same torchvision code. Downloads still check md5.
def no_md5(files: list[list[str]]) -> list[list[str | None]]:
    return [[name, None] for name, _ in files]


class _CIFAR10(tvd.CIFAR10):
    train_list = no_md5(tvd.CIFAR10.train_list)
    test_list = no_md5(tvd.CIFAR10.test_list)
    meta = {**tvd.CIFAR10.meta, "md5": None}


class _CIFAR100(tvd.CIFAR100):
    train_list = no_md5(tvd.CIFAR100.train_list)
    test_list = no_md5(tvd.CIFAR100.test_list)
    meta = {**tvd.CIFAR100.meta, "md5": None}


def _loader(name: str, cls: type[tvd.CIFAR10]) -> Loader:
    def load(split: str, root: Path, download: bool, image_size: int) -> ImageArrays:
        ds = cls(str(root), train=split == "train", download=download)
        return ImageArrays(
            np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64), name, list(ds.classes)
        )

    return load


def _spec(name: str, cls: type[tvd.CIFAR10], num_classes: int, mean, std, source: str) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        num_classes=num_classes,
        image_size=32,
        channels=3,
        mean=mean,
        std=std,
        splits=("train", "test"),
        source=source,
        load=_loader(name, cls),
    )


register_dataset(
    _spec(
        "cifar10",
        _CIFAR10,
        10,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        archive_source("cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    )
)
register_dataset(
    _spec(
        "cifar100",
        _CIFAR100,
        100,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        archive_source("cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
    )
)
