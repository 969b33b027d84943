"""STL-10 (Coates et al. 2011): 96x96 colour images, 5k labelled train / 8k test in 10 classes and 100k
unlabelled images for unsupervised learning, loaded by torchvision from the official binaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torchvision import datasets as tvd

from projects.core.datasets.base import DatasetSpec, ImageArrays, archive_source, register_dataset
from projects.core.datasets.cifar import no_md5


class _STL10(tvd.STL10):
    train_list = no_md5(tvd.STL10.train_list)
    test_list = no_md5(tvd.STL10.test_list)


def _load(split: str, root: Path, download: bool, image_size: int) -> ImageArrays:
    """``unlabeled`` images have label -1; ``train+unlabeled`` is train followed by unlabeled."""
    ds = _STL10(str(root), split=split, download=download)
    images = np.ascontiguousarray(np.asarray(ds.data).transpose(0, 2, 3, 1))  # NCHW -> NHWC
    return ImageArrays(images, np.asarray(ds.labels, dtype=np.int64), "stl10", list(ds.classes))


register_dataset(
    DatasetSpec(
        name="stl10",
        num_classes=10,
        image_size=96,
        channels=3,
        mean=(0.4467, 0.4398, 0.4066),
        std=(0.2603, 0.2566, 0.2713),
        splits=("train", "test", "unlabeled", "train+unlabeled"),
        source=archive_source("stl10_binary", "https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"),
        load=_load,
    )
)
