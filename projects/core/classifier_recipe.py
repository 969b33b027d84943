"""Supervised image classification without tracking: the shared recipe's parameters, data and batches.

One recipe for ``classify``, ``supervised`` and ``finetune``: optimiser + warmup/cosine, the standard
CIFAR augmentation (batched on the device or albumentations in workers), optional CutMix/Mixup (timm's
``Mixup``, lambda corrected for the clipped box), label smoothing, per-epoch validation on a held-out
stratified slice of the training split. :mod:`projects.core.classification` runs it in an MLflow run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from torch import nn

from projects.core import distributed, pipeline
from projects.core.batch_augment import Augmentation, Normalize, StandardAugment
from projects.core.config import check, check_choice, check_shares, param
from projects.core.data import (
    LABEL_FRACTION_HELP,
    ImageArrays,
    load_split,
    num_classes,
    split_train_val,
    stratified_fraction,
)
from projects.core.datasets import get_dataset, resolve_image_size
from projects.core.models import STEMS, model_names
from projects.core.train_config import TrainConfig
from projects.core.transforms import ImageOnly, eval_transform, standard_train_transform


@dataclass
class ClassifierConfig(TrainConfig):
    label_fraction: float = param(1.0, LABEL_FRACTION_HELP)
    image_size: int = param(0, "input resolution; 0 = the dataset's native size (dataset=folder: required)")
    val_fraction: float = param(
        0.1, "stratified share of the training split held out for per-epoch validation"
    )
    label_smoothing: float = param(0.0, "label smoothing of the cross-entropy targets")
    cutmix_prob: float = param(0.0, "probability that a batch is mixed (CutMix, or Mixup when enabled)")
    cutmix_alpha: float = param(1.0, "CutMix box size ~ Beta(alpha, alpha)")
    mixup_alpha: float = param(0.0, "Mixup Beta(alpha, alpha); 0 disables Mixup")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_shares(self)
        check(self.image_size >= 0, f"image_size must be >= 0, got {self.image_size}")
        resolve_image_size(self.dataset, self.image_size)  # dataset=folder needs an image_size
        check(0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        check(0 <= self.cutmix_prob <= 1, f"cutmix_prob must be in [0, 1], got {self.cutmix_prob}")
        check(self.cutmix_alpha > 0, f"cutmix_alpha must be > 0, got {self.cutmix_alpha}")
        check(self.mixup_alpha >= 0, f"mixup_alpha must be >= 0, got {self.mixup_alpha}")
        check(
            self.cutmix_prob == 0 or self.batch_size % 2 == 0,
            f"CutMix/Mixup needs an even batch_size, got {self.batch_size}",
        )

    @property
    def resolution(self) -> int:
        """Side of the model's input images."""
        return resolve_image_size(self.dataset, self.image_size)


def create_mixup(cfg: ClassifierConfig, num_classes: int) -> Mixup | None:
    """timm's batch-wise CutMix/Mixup (soft targets include label smoothing), or None when off."""
    if cfg.cutmix_prob == 0:
        return None
    return Mixup(
        mixup_alpha=cfg.mixup_alpha,
        cutmix_alpha=cfg.cutmix_alpha,
        prob=cfg.cutmix_prob,
        switch_prob=0.5 if cfg.mixup_alpha > 0 else 0.0,
        mode="batch",
        correct_lam=True,
        label_smoothing=cfg.label_smoothing,
        num_classes=num_classes,
    )


class ClassifierBatch:
    """Trainer ``batch_transform``: batched augmentation of uint8 images (if any), then CutMix/Mixup (if
    on), which turns labels into soft targets. The augmentation's generator state is checkpointed."""

    def __init__(self, augment: Callable[[torch.Tensor], torch.Tensor] | None, mixup: Mixup | None):
        self.augment, self.mixup = augment, mixup

    def __call__(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = batch
        if self.augment is not None:
            images = self.augment(images)
        if self.mixup is not None:
            images, labels = self.mixup(images, labels)
        return images, labels

    def state_dict(self) -> dict | None:
        return self.augment.state_dict() if isinstance(self.augment, Augmentation) else None

    def load_state_dict(self, state: dict) -> None:
        if isinstance(self.augment, Augmentation):
            self.augment.load_state_dict(state)


def classification_step(label_smoothing: float):
    """Cross-entropy on hard labels (with label smoothing), or on CutMix/Mixup's soft targets."""
    soft_ce = SoftTargetCrossEntropy()

    def step(model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        images, targets = batch
        if targets.ndim == 2:
            return soft_ce(model(images), targets), len(images)
        return F.cross_entropy(model(images), targets, label_smoothing=label_smoothing), len(images)

    return step


@dataclass
class NamedModelConfig(ClassifierConfig):
    """A classifier built by name (``create_model``) and trained from scratch."""

    model: str = param("resnet18", "model name: resnet18/34/50 or a ViT config (see projects.core.vit)")
    stem: str = param(
        "cifar", "ResNet stem: cifar (3x3 stride 1, no max-pool) or imagenet (7x7/2 + max-pool)", STEMS
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("model", self.model, model_names())


@dataclass(frozen=True)
class ClassifierData:
    """The splits and their batches for one classifier run."""

    train: ImageArrays
    val: ImageArrays
    test: ImageArrays
    train_loader: Iterable
    val_loader: Iterable
    test_loader: Iterable
    batch_transform: ClassifierBatch


def build_data(cfg: ClassifierConfig, device: torch.device) -> ClassifierData:
    """Load and split ``cfg.dataset``; batches for training (augmented, CutMix) and evaluation."""
    size = cfg.resolution
    full_train = load_split(cfg.dataset, "train", cfg.data_dir, cfg.download, cfg.image_size)
    classes = num_classes(full_train)  # before the test split: unlabelled images fail here, saying why
    test = load_split(cfg.dataset, "test", cfg.data_dir, cfg.download, cfg.image_size)
    native = full_train.images.shape[1]  # the side the split was loaded at
    train, val = split_train_val(full_train, cfg.val_fraction, cfg.seed)
    train = stratified_fraction(train, cfg.label_fraction, cfg.seed)
    # Inputs resized to another resolution (e.g. for ImageNet stems) are only resized, not cropped.
    train_tf = (
        standard_train_transform(cfg.dataset, native)
        if size == native
        else eval_transform(cfg.dataset, size, native)
    )
    test_tf = ImageOnly(eval_transform(cfg.dataset, size, native))
    spec = get_dataset(cfg.dataset)
    normalize = Normalize(spec.mean, spec.std, size=size)
    mixup = create_mixup(cfg, classes)
    # CutMix/Mixup pair each image with another of an even, full batch: the last partial batch is dropped.
    check(
        mixup is None or len(train) >= cfg.batch_size,
        f"batch_size={cfg.batch_size} exceeds the {len(train)} training images: no full batch to train on "
        "(CutMix drops the partial one); lower batch_size or raise label_fraction",
    )
    feed = pipeline.feed_options(cfg, device)
    train_loader = pipeline.train_loader(
        train,
        **feed,
        per_image=ImageOnly(train_tf),
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        drop_last=mixup is not None,
    )
    augment = None
    if cfg.augment == "batched":
        augment = (
            StandardAugment(normalize, native // 8, distributed.rank_seed(cfg.seed), device)
            if size == native
            else normalize
        )
    val_loader = pipeline.eval_loader(val, **feed, per_image=test_tf, normalize=normalize)
    test_loader = pipeline.eval_loader(test, **feed, per_image=test_tf, normalize=normalize)

    return ClassifierData(
        train, val, test, train_loader, val_loader, test_loader, ClassifierBatch(augment, mixup)
    )
