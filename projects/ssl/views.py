"""SimCLR's stochastic augmentation t ~ T, applied twice per image: per image with albumentations in
DataLoader workers (the reference), or per batch on the device (:class:`BatchTwoViews`)."""

from __future__ import annotations

import albumentations as A
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from projects.core.batch_augment import Augmentation
from projects.core.transforms import normalize


def simclr_augmentation(
    dataset: str,
    size: int,
    crop_scale_min: float = 0.08,
    flip: bool = True,
    color_jitter: float = 1.0,
    grayscale: bool = True,
    blur: bool = False,
) -> A.Compose:
    """Random resized crop, flip, colour jitter (p=0.8), grayscale (p=0.2), optional blur (p=0.5).

    ``color_jitter`` is the paper's strength s (brightness/contrast/saturation 0.8s, hue 0.2s); 0 turns it
    off. Each step can be switched off for augmentation ablations.
    """
    steps: list[A.BasicTransform] = [A.RandomResizedCrop(size=(size, size), scale=(crop_scale_min, 1.0))]
    if flip:
        steps.append(A.HorizontalFlip(p=0.5))
    if color_jitter > 0:
        s = color_jitter
        steps.append(
            A.ColorJitter(
                brightness=0.8 * s, contrast=0.8 * s, saturation=0.8 * s, hue=min(0.2 * s, 0.5), p=0.8
            )
        )
    if grayscale:
        steps.append(A.ToGray(p=0.2))
    if blur:
        kernel = max(3, (size // 10) | 1)  # the paper's 10% of the image side, odd
        steps.append(A.GaussianBlur(blur_limit=(kernel, kernel), sigma_limit=(0.1, 2.0), p=0.5))
    return A.Compose([*steps, normalize(dataset), ToTensorV2()])


class TwoViews:
    """image -> (view1, view2): two independent draws of the same augmentation."""

    def __init__(self, transform: A.Compose):
        self.transform = transform

    def __call__(self, image: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(image=image)["image"], self.transform(image=image)["image"]


class BatchTwoViews:
    """Trainer ``batch_transform``: (uint8 images, labels) -> ((view1, view2), labels), both views drawn
    independently per sample by a batched augmentation; its generator state is checkpointed.

    Both views come from one call on the batch twice over: every one of the 2N samples draws its own
    parameters, and the device runs each augmentation kernel once per step instead of twice.
    """

    def __init__(self, augment: Augmentation):
        self.augment = augment

    def __call__(self, batch: tuple[torch.Tensor, torch.Tensor]):
        images, labels = batch
        view1, view2 = self.augment(torch.cat([images, images])).chunk(2)
        return (view1, view2), labels

    def state_dict(self) -> dict:
        return self.augment.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.augment.load_state_dict(state)
