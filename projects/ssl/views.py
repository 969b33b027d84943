"""The two augmented views of every image that SSL methods train on: per image with albumentations in
DataLoader workers (the reference), or per batch on the device (:class:`BatchViews`). Each view follows
its own :class:`~projects.core.batch_augment.ViewParams`."""

from __future__ import annotations

import albumentations as A
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from projects.core.batch_augment import ViewAugment, ViewParams
from projects.core.transforms import normalize


def view_augmentation(dataset: str, size: int, view: ViewParams) -> A.Compose:
    """albumentations pipeline of one view: the same steps, order and probabilities as :class:`ViewAugment`."""
    steps: list[A.BasicTransform] = [A.RandomResizedCrop(size=(size, size), scale=(view.crop_scale_min, 1.0))]
    if view.flip:
        steps.append(A.HorizontalFlip(p=0.5))
    if view.jitter_p > 0 and any(view.jitter):
        brightness, contrast, saturation, hue = view.jitter
        steps.append(
            A.ColorJitter(
                brightness=brightness, contrast=contrast, saturation=saturation, hue=hue, p=view.jitter_p
            )
        )
    if view.grayscale_p > 0:
        steps.append(A.ToGray(p=view.grayscale_p))
    if view.blur_p > 0:
        kernel = view.blur_kernel(size)
        steps.append(A.GaussianBlur(blur_limit=(kernel, kernel), sigma_limit=(0.1, 2.0), p=view.blur_p))
    if view.solarize_p > 0:
        steps.append(A.Solarize(threshold_range=(0.5, 0.5), p=view.solarize_p))
    return A.Compose([*steps, normalize(dataset), ToTensorV2()])


class TwoViews:
    """image -> (view1, view2): one draw of each view's augmentation (the same one twice if symmetric)."""

    def __init__(self, first: A.Compose, second: A.Compose | None = None):
        self.first, self.second = first, second or first

    def __call__(self, image: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return self.first(image=image)["image"], self.second(image=image)["image"]

    def set_random_seed(self, seed: int) -> None:
        """Seed both views' albumentations RNGs (what ``seed_augmentation`` calls in every worker)."""
        self.first.set_random_seed(seed)
        if self.second is not self.first:
            self.second.set_random_seed((seed + 1) % 2**32)


class BatchViews:
    """Trainer ``batch_transform``: (uint8 images, labels) -> ((view1, view2), labels), every sample
    drawing its own parameters; the generators' states are checkpointed.

    Symmetric views (one augmentation) come from one call on the batch twice over, so the device runs
    each kernel once per step instead of twice; asymmetric views call each view's augmentation.
    """

    def __init__(self, first: ViewAugment, second: ViewAugment | None = None):
        self.augments = [first] if second is None else [first, second]

    def __call__(self, batch: tuple[torch.Tensor, torch.Tensor]):
        images, labels = batch
        if len(self.augments) == 1:
            view1, view2 = self.augments[0](torch.cat([images, images])).chunk(2)
        else:
            view1, view2 = (augment(images) for augment in self.augments)
        return (view1, view2), labels

    def state_dict(self) -> dict:
        return {str(i): augment.state_dict() for i, augment in enumerate(self.augments)}

    def load_state_dict(self, state: dict) -> None:
        for i, augment in enumerate(self.augments):
            augment.load_state_dict(state[str(i)])
