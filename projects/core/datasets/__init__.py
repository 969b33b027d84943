"""Datasets by name: a registry of :class:`DatasetSpec` (classes, native size, normalisation, splits,
source, loader), one module per dataset family. Importing this package registers every built-in dataset;
``register_dataset`` adds others (before the entry points' configs are imported, whose ``dataset``
choices are ``dataset_names()``).
"""

from projects.core.datasets import cifar, folder, mnist, stl10, synthetic  # noqa: F401 (registers them)
from projects.core.datasets.base import (
    DatasetSpec,
    ImageArrays,
    Loader,
    dataset_names,
    get_dataset,
    register_dataset,
    resolve_image_size,
)

__all__ = [
    "DatasetSpec",
    "ImageArrays",
    "Loader",
    "dataset_names",
    "get_dataset",
    "register_dataset",
    "resolve_image_size",
]
