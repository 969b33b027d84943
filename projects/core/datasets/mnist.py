"""MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao et al. 2017): 28x28 grey images in 10 classes,
60k train / 10k test, loaded by torchvision from the official idx files.

torchvision reads ``<data_dir>/MNIST/raw/train-images-idx3-ubyte`` etc. (``FashionMNIST/raw/`` for
Fashion-MNIST) and checks only that the files exist (md5 sums are checked on download), so local copies
load as they are. Grey is repeated over 3 channels: every dataset's arrays are (N, H, W, 3).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torchvision import datasets as tvd

from projects.core.datasets.base import DatasetSpec, ImageArrays, Loader, register_dataset

IDX_FILES = "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"


def _loader(name: str, cls: type[tvd.MNIST]) -> Loader:
    def load(split: str, root: Path, download: bool, image_size: int) -> ImageArrays:
        ds = cls(str(root), train=split == "train", download=download)
        grey = ds.data.numpy()  # uint8 (N, 28, 28)
        images = np.repeat(grey[..., None], 3, axis=-1)
        return ImageArrays(images, ds.targets.numpy().astype(np.int64), name, list(ds.classes))

    return load


def _spec(name: str, cls: type[tvd.MNIST], mean: float, std: float) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        num_classes=10,
        image_size=28,
        channels=1,
        mean=(mean,) * 3,
        std=(std,) * 3,
        splits=("train", "test"),
        source=f"{cls.__name__}/raw/ there ({IDX_FILES}: the .gz files of {cls.mirrors[0]}, unpacked)",
        load=_loader(name, cls),
    )


register_dataset(_spec("mnist", tvd.MNIST, 0.1307, 0.3081))
register_dataset(_spec("fashion_mnist", tvd.FashionMNIST, 0.2860, 0.3530))
