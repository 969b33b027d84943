"""Albumentations pipelines for supervised training (HWC uint8 numpy in, normalised CHW tensor out)."""

from __future__ import annotations

import albumentations as A
from albumentations.pytorch import ToTensorV2

from projects.core.datasets import get_dataset


def normalize(dataset: str) -> A.Normalize:
    spec = get_dataset(dataset)
    return A.Normalize(mean=spec.mean, std=spec.std, max_pixel_value=255.0)


def standard_train_transform(dataset: str, image_size: int) -> A.Compose:
    """The standard CIFAR recipe: 4-pixel reflect padding, random crop, horizontal flip."""
    pad = image_size // 8
    return A.Compose(
        [
            A.PadIfNeeded(
                image_size + 2 * pad, image_size + 2 * pad, border_mode=4
            ),  # cv2.BORDER_REFLECT_101
            A.RandomCrop(image_size, image_size),
            A.HorizontalFlip(p=0.5),
            normalize(dataset),
            ToTensorV2(),
        ]
    )


def eval_transform(dataset: str, image_size: int, native_size: int) -> A.Compose:
    steps = [] if image_size == native_size else [A.Resize(image_size, image_size)]
    return A.Compose([*steps, normalize(dataset), ToTensorV2()])


class ImageOnly:
    """albumentations' dict interface -> ``image -> tensor`` for :class:`ArrayDataset` (picklable)."""

    def __init__(self, transform: A.Compose):
        self.transform = transform

    def __call__(self, image):
        return self.transform(image=image)["image"]
