"""Supervised image classification on the shared loop: used by ``classify``, ``supervised`` and ``finetune``.

One recipe: optimiser + warmup/cosine, standard augmentation, optional CutMix/Mixup (timm's ``Mixup``,
lambda corrected for the clipped box), label smoothing; per-epoch val loss/top-1/top-5 on a held-out
stratified slice of the training split, final test top-1/top-5, checkpoints, registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import torch
import torch.nn.functional as F
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy
from torch import nn

from projects.core.config import check, check_choice, check_shares, param
from projects.core.data import (
    IMAGE_SIZE,
    NUM_CLASSES,
    ArrayDataset,
    ImageArrays,
    load_split,
    stratified_fraction,
)
from projects.core.evaluate import validate
from projects.core.fit import fit_in_run
from projects.core.loop import Callback, make_loader, resolve_device
from projects.core.models import STEMS, create_model, model_names
from projects.core.registry import log_and_register
from projects.core.tracking import log_dataset, tracked_run
from projects.core.train_config import TrainConfig
from projects.core.transforms import ImageOnly, eval_transform, standard_train_transform


@dataclass
class ClassifierConfig(TrainConfig):
    fraction: float = param(1.0, "seeded, class-stratified share of the training split to use, in (0, 1]")
    image_size: int = param(0, "input resolution; 0 = the dataset's native size")
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
        return self.image_size or IMAGE_SIZE[self.dataset]


def split_train_val(data: ImageArrays, val_fraction: float, seed: int) -> tuple[ImageArrays, ImageArrays]:
    """A seeded, class-stratified train/val split of a training set."""
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(data.labels):
        idx = np.flatnonzero(data.labels == label)
        val.append(rng.choice(idx, size=max(1, int(round(val_fraction * len(idx)))), replace=False))
    val_index = np.sort(np.concatenate(val))
    train_index = np.setdiff1d(np.arange(len(data)), val_index)
    return data.subset(train_index, f"{data.name}-train"), data.subset(val_index, f"{data.name}-val")


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


def classification_step(mixup: Mixup | None, label_smoothing: float):
    soft_ce = SoftTargetCrossEntropy()

    def step(model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        images, labels = (t.to(device, non_blocking=True) for t in batch)
        if mixup is not None:
            images, targets = mixup(images, labels)
            return soft_ce(model(images), targets), len(images)
        return F.cross_entropy(model(images), labels, label_smoothing=label_smoothing), len(images)

    return step


def fit_classifier(
    cfg: ClassifierConfig,
    model: nn.Module,
    *,
    entry_point: str,
    registered_name: str,
    run_name: str,
    callbacks: Sequence[Callback] = (),
    nested: bool = False,
    tags: dict[str, str] | None = None,
) -> dict[str, float]:
    """Train ``model`` on ``cfg.dataset`` in a tracked run; returns the final metrics."""
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    num_classes = NUM_CLASSES[cfg.dataset]
    size = cfg.resolution
    native = IMAGE_SIZE[cfg.dataset]
    full_train = load_split(cfg.dataset, "train", cfg.data_dir, cfg.download)
    test = load_split(cfg.dataset, "test", cfg.data_dir, cfg.download)
    train, val = split_train_val(full_train, cfg.val_fraction, cfg.seed)
    train = stratified_fraction(train, cfg.fraction, cfg.seed)
    train_tf = standard_train_transform(cfg.dataset, native)
    if size != native:
        train_tf = eval_transform(cfg.dataset, size, native)  # resize only; rarely used (e.g. ImageNet stems)
    test_tf = ImageOnly(eval_transform(cfg.dataset, size, native))
    mixup = create_mixup(cfg, num_classes)
    train_loader = make_loader(
        ArrayDataset(train, ImageOnly(train_tf)),
        cfg.batch_size,
        True,
        cfg.num_workers,
        drop_last=mixup is not None,
        seed=cfg.seed,
    )
    val_loader = make_loader(ArrayDataset(val, test_tf), 512, False, cfg.num_workers)
    test_loader = make_loader(ArrayDataset(test, test_tf), 512, False, cfg.num_workers)

    with tracked_run(cfg, entry_point, run_name=run_name, nested=nested, tags=tags, device=device) as tr:
        log_dataset(train.images, train.labels, train.name, cfg.data_dir, "train")
        log_dataset(val.images, val.labels, val.name, cfg.data_dir, "validation")
        log_dataset(test.images, test.labels, f"{cfg.dataset}-test", cfg.data_dir, "test")
        trainer, logs = fit_in_run(
            tr,
            cfg,
            model,
            train_loader,
            classification_step(mixup, cfg.label_smoothing),
            evaluate=lambda m: validate(m, val_loader, device),
            monitor="val_top1",
            device=device,
            callbacks=callbacks,
        )
        final = {
            **logs,
            **validate(model, test_loader, device, prefix="test"),
            "best_val_top1": trainer.best or 0.0,
        }
        mlflow.log_metrics({k: final[k] for k in ("test_top1", "test_top5", "test_loss", "best_val_top1")})
        if cfg.register:
            example = np.zeros((1, 3, size, size), dtype=np.float32)
            log_and_register(model, registered_name, "test_top1", final["test_top1"], example)
        return final


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


def train_named_model(
    cfg: NamedModelConfig,
    *,
    entry_point: str,
    callbacks: Sequence[Callback] = (),
    nested: bool = False,
    model_kwargs: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Build ``cfg.model`` for ``cfg.dataset`` and train it; registered as ``<entry_point>-<model>``.

    ``model_kwargs`` go to ``create_model`` on top of the defaults (e.g. a ViT's ``patch_size``).
    """
    torch.manual_seed(cfg.seed)
    kwargs = {"stem": cfg.stem} if cfg.model.startswith("resnet") else {"image_size": cfg.resolution}
    model = create_model(cfg.model, num_classes=NUM_CLASSES[cfg.dataset], **kwargs, **(model_kwargs or {}))
    return fit_classifier(
        cfg,
        model,
        entry_point=entry_point,
        registered_name=f"{entry_point}-{cfg.model}",
        run_name=f"{entry_point}-{cfg.model}-{cfg.dataset}",
        callbacks=callbacks,
        nested=nested,
    )
