"""``folder``: your own images, ``dataset=folder data_dir=<path> image_size=<side>``.

data_dir holds one of torchvision's ``ImageFolder`` layouts (one subfolder of images per class):

- ``train/<class>/<image>`` and optionally ``test/<class>/<image>``: labelled train and test splits;
- ``<class>/<image>``: a labelled train split;
- image files alone (no subfolders): an unlabelled train split (labels -1, no classes), for pretraining
  only. A ``train/`` or ``test/`` folder holding image files alone is unlabelled in the same way.

Images are the files with one of torchvision's ``IMG_EXTENSIONS``, read by its ``default_loader`` (PIL,
converted to RGB), resized so that their shorter side is ``image_size`` and center-cropped to
``image_size`` x ``image_size``: the aspect ratio is kept and the ends of the longer side are cut off.
Labels index the train split's class folders, sorted by name; the test split uses the same classes (a
class folder that only the test split has is an error). The number of classes is therefore known only
from the data: the spec's ``num_classes`` is 0 and runs take ``len(classes)`` of the loaded split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torchvision import transforms as T
from torchvision.datasets.folder import (
    IMG_EXTENSIONS,
    default_loader,
    find_classes,
    is_image_file,
    make_dataset,
)

from projects.core.datasets.base import DatasetSpec, ImageArrays, register_dataset
from projects.core.errors import DataError

LAYOUT = "train/<class>/<image> (and test/<class>/<image>), <class>/<image>, or images alone (unlabelled)"
# ImageNet's statistics: the usual normalisation for photographs of unknown origin.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _split_folder(root: Path, split: str) -> Path:
    """The folder holding ``split``: ``root/<split>`` in the train/test layout, else ``root`` (train only)."""
    if not root.is_dir():
        raise DataError(f"dataset=folder: {root} is not a folder; data_dir must hold {LAYOUT}")
    if (root / "train").is_dir():
        folder = root / split
        if not folder.is_dir():
            raise DataError(f"dataset=folder has no {split} split: {folder} is missing (layout: {LAYOUT})")
        return folder
    if split != "train":
        raise DataError(
            f"dataset=folder has no {split} split: {root} holds one split (train); for a {split} split "
            f"put train/<class>/<image> and {split}/<class>/<image> there"
        )
    return root


def _class_folders(folder: Path) -> list[str]:
    try:
        return find_classes(folder)[0]
    except FileNotFoundError:  # no subfolders: images alone
        return []


def _samples(folder: Path, classes: list[str], split: str) -> list[tuple[str, int]]:
    """(path, label) of every image; torchvision's ``make_dataset`` walks class folders."""
    if not classes:
        files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p.name))
        return [(str(p), -1) for p in files]
    unknown = sorted(set(_class_folders(folder)) - set(classes))
    if unknown:
        raise DataError(f"dataset=folder: class folders {unknown} of {folder} are not in the train split")
    try:
        # Every train class needs images; a test split may lack some.
        return make_dataset(
            folder, {c: i for i, c in enumerate(classes)}, IMG_EXTENSIONS, allow_empty=split != "train"
        )
    except FileNotFoundError as exc:
        raise DataError(f"dataset=folder: {folder}: {exc}") from None


def _read(path: str, resize: T.Compose) -> np.ndarray:
    try:
        image = default_loader(path)
    except OSError as exc:
        raise DataError(f"dataset=folder: cannot read {path} as an image ({exc})") from None
    return np.asarray(resize(image), dtype=np.uint8)


def _load(split: str, root: Path, download: bool, image_size: int) -> ImageArrays:
    folder = _split_folder(root, split)
    classes = _class_folders(_split_folder(root, "train"))
    samples = _samples(folder, classes, split)
    if not samples:
        raise DataError(
            f"dataset=folder: no images ({', '.join(IMG_EXTENSIONS)}) in {folder}; data_dir must hold {LAYOUT}"
        )
    resize = T.Compose([T.Resize(image_size), T.CenterCrop(image_size)])
    images = np.stack([_read(path, resize) for path, _ in samples])
    labels = np.array([label for _, label in samples], dtype=np.int64)
    return ImageArrays(images, labels, "folder", classes)


register_dataset(
    DatasetSpec(
        name="folder",
        num_classes=0,
        image_size=0,
        channels=3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        splits=("train", "test"),
        source=f"your images there ({LAYOUT})",
        load=_load,
    )
)
