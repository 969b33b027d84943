"""The dataset registry: one :class:`DatasetSpec` per name, and :class:`ImageArrays`, what a loader returns.

Everything a run needs to know about a dataset (classes, native size, normalisation, splits, where its
files come from, how to load them) is in its spec, so code asks ``get_dataset(name)`` instead of keeping
per-dataset tables or branching on names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from projects.core.errors import ConfigError, DataError


@dataclass(frozen=True)
class ImageArrays:
    """One split in memory: uint8 images (N, H, W, 3), int64 labels (N,) with -1 where unlabelled, and
    ``classes``, the name of each label (empty when the split has no labels).

    Both arrays are made read-only on creation: one split is shared by every subset, loader and
    fingerprint of a run, so nothing may change it in place. :meth:`subset` and :meth:`concat` return new
    sets and leave their inputs as they were.
    """

    images: np.ndarray
    labels: np.ndarray
    name: str
    classes: list[str]

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
        if labels.dtype != np.int64 or labels.shape != (len(images),):
            raise ValueError(f"labels must be int64 ({len(images)},), got {labels.dtype} {labels.shape}")
        images.flags.writeable = False
        labels.flags.writeable = False

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


# load(split, root, download, image_size) -> the split as arrays. ``root`` is data_dir; ``image_size`` is
# the side to resize to, which only datasets without a native size (``folder``) use. Missing files raise
# OSError/RuntimeError (``load_split`` turns them into a DataError that names ``source``) or a DataError.
Loader = Callable[[str, Path, bool, int], ImageArrays]


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is and how to load it.

    ``num_classes`` 0 means the classes come from the data (``folder``: its class subfolders), and
    ``image_size`` 0 that the run chooses the side the images are resized to (``folder``). ``channels`` is
    what the files hold (1 for MNIST); loaded images always have 3 (grey repeated). ``mean``/``std``
    normalise RGB in [0, 1]. ``source`` says what to put under data_dir and where it comes from: it
    completes the missing-data error's "put ...".
    """

    name: str
    num_classes: int
    image_size: int
    channels: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    splits: tuple[str, ...]
    source: str
    load: Loader


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` under its name (once); its fields are checked here so every registered spec is usable."""
    problems = [
        (spec.name in _REGISTRY, "is already registered"),
        (not spec.name, "needs a name"),
        ("train" not in spec.splits, "needs a train split"),
        (spec.num_classes < 0 or spec.image_size < 0, "needs num_classes and image_size >= 0"),
        (spec.channels not in (1, 3), "needs 1 or 3 channels"),
        (len(spec.mean) != 3 or len(spec.std) != 3, "needs a 3-channel mean and std"),
        (min(spec.std) <= 0, "needs std > 0"),
    ]
    for failed, message in problems:
        if failed:
            raise ValueError(f"dataset {spec.name!r} {message}")
    _REGISTRY[spec.name] = spec
    return spec


def dataset_names() -> tuple[str, ...]:
    """Every registered dataset, sorted (the ``dataset`` choices of the entry points)."""
    return tuple(sorted(_REGISTRY))


def get_dataset(name: str) -> DatasetSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(dataset_names())}") from None


def resolve_image_size(name: str, image_size: int) -> int:
    """The side a run's images have: ``image_size`` if set (> 0), else the dataset's native size.

    ``ConfigError`` for a dataset without a native size (``folder``) and no ``image_size``.
    """
    size = image_size or get_dataset(name).image_size
    if size <= 0:
        raise ConfigError(f"dataset={name} needs image_size > 0 (its images are resized to it)")
    return size


def archive_source(folder: str, url: str) -> str:
    """``DatasetSpec.source`` of a dataset distributed as one archive holding ``folder``."""
    return f"{folder}/ there (extracted from {url})"
