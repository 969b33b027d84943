"""SimCLR (Chen et al. 2020, Algorithm 1) without tracking: its parameters, the data and views, the model,
the training step and the per-epoch kNN monitor. :mod:`projects.ssl.simclr` runs it inside an MLflow run;
benchmarks run it bare.

For each batch of N images: two augmented views (2N), h = f(x), z = g(h), NT-Xent over the 2N
projections. After each epoch, a weighted kNN classifier on f's features (bank: labelled training
images, queries: a held-out validation split) gives ``knn_top1``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from projects.core import pipeline
from projects.core.batch_augment import Normalize, SimCLRAugment
from projects.core.config import check, check_shares, param
from projects.core.data import (
    IMAGE_SIZE,
    MEAN_STD,
    ImageArrays,
    load_split,
    split_train_val,
    stratified_fraction,
)
from projects.core.evaluate import extract_features, knn_accuracy
from projects.core.loop import BatchTransform
from projects.core.models import RESNETS, STEMS, create_model
from projects.core.train_config import TrainConfig
from projects.core.transforms import ImageOnly, eval_transform
from projects.ssl.heads import HEADS
from projects.ssl.losses.ntxent import nt_xent
from projects.ssl.model import SimCLRModel
from projects.ssl.views import BatchTwoViews, TwoViews, simclr_augmentation

PRETRAIN_SPLITS = ("train", "train+unlabeled")


@dataclass
class Config(TrainConfig):
    dataset: str = param("cifar10", "pretraining dataset", ("cifar10", "cifar100", "stl10", "synthetic"))
    split: str = param(
        "train", "pretraining split; train+unlabeled adds STL-10's 100k unlabelled images", PRETRAIN_SPLITS
    )
    fraction: float = param(1.0, "seeded, class-stratified share of the pretraining split, in (0, 1]")
    arch: str = param("resnet18", "encoder f", tuple(RESNETS))
    stem: str = param("cifar", "ResNet stem (cifar: 3x3/1, no max-pool; imagenet: 7x7/2 + max-pool)", STEMS)
    head: str = param("mlp", "projection head g", HEADS)
    proj_dim: int = param(128, "output dimension of g")
    temperature: float = param(0.5, "NT-Xent temperature tau")
    epochs: int = param(100, "pretraining epochs")
    batch_size: int = param(256, "images per step (2x views)")
    lr: float = param(1e-3, "peak learning rate (after warmup)")
    weight_decay: float = param(1e-4, "weight decay (not on biases and norm weights)")
    warmup_epochs: float = param(10.0, "linear warmup epochs before cosine decay")
    crop_scale_min: float = param(0.08, "RandomResizedCrop minimum area share")
    flip: bool = param(True, "random horizontal flip")
    color_jitter: float = param(1.0, "colour-jitter strength s (p=0.8); 0 disables")
    grayscale: bool = param(True, "random grayscale (p=0.2)")
    blur: bool = param(False, "Gaussian blur (p=0.5); the paper skips it on CIFAR")
    val_fraction: float = param(0.1, "share of the labelled training split held out as kNN queries")
    knn_bank: int = param(5000, "labelled training images in the kNN memory bank")
    knn_k: int = param(20, "neighbours of the weighted kNN monitor")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_shares(self)
        check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        check(
            self.batch_size >= 2, f"batch_size must be >= 2 (NT-Xent needs negatives), got {self.batch_size}"
        )
        check(self.proj_dim > 0, f"proj_dim must be > 0, got {self.proj_dim}")
        check(0 < self.crop_scale_min <= 1, f"crop_scale_min must be in (0, 1], got {self.crop_scale_min}")
        check(self.color_jitter >= 0, f"color_jitter must be >= 0, got {self.color_jitter}")
        check(self.knn_bank >= 10, f"knn_bank must be >= 10, got {self.knn_bank}")
        check(self.knn_k >= 1, f"knn_k must be >= 1, got {self.knn_k}")
        check(
            self.split == "train" or self.dataset == "stl10",
            f"split={self.split!r} exists only for stl10; use split=train for {self.dataset}",
        )


def simclr_step(temperature: float):
    def step(model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        (view1, view2), _ = batch
        n = len(view1)
        z = model(torch.cat([view1, view2]))
        return nt_xent(z[:n], z[n:], temperature), n

    return step


class KnnMonitor:
    """``evaluate`` hook: kNN top-1 of the encoder's features on the validation split."""

    def __init__(self, bank_loader, query_loader, device: torch.device, k: int):
        self.bank_loader, self.query_loader, self.device, self.k = bank_loader, query_loader, device, k

    def __call__(self, model: SimCLRModel) -> dict[str, float]:
        bank, bank_labels = extract_features(model.encoder, self.bank_loader, self.device)
        query, query_labels = extract_features(model.encoder, self.query_loader, self.device)
        return {"knn_top1": knn_accuracy(bank, bank_labels, query, query_labels, k=self.k)}


@dataclass(frozen=True)
class SimCLRSetup:
    """Everything a SimCLR run trains and monitors; the entry point adds tracking around it."""

    model: SimCLRModel
    pretrain: ImageArrays
    val: ImageArrays
    train_loader: Iterable
    batch_transform: BatchTransform | None
    step: Any
    monitor: KnnMonitor
    image_size: int

    def trainer_args(self) -> dict[str, Any]:
        """What ``create_trainer`` / ``fit_in_run`` take from the setup, by their parameter names."""
        return {
            "train_loader": self.train_loader,
            "step_fn": self.step,
            "evaluate": self.monitor,
            "monitor": "knn_top1",
            "batch_transform": self.batch_transform,
        }


def build(cfg: Config, device: torch.device) -> SimCLRSetup:
    """Data, views, model and monitor for ``cfg``; seeds torch with ``cfg.seed`` first."""
    torch.manual_seed(cfg.seed)
    size = IMAGE_SIZE[cfg.dataset]
    labelled = load_split(cfg.dataset, "train", cfg.data_dir, cfg.download)
    train, val = split_train_val(labelled, cfg.val_fraction, cfg.seed)
    pretrain = stratified_fraction(train, cfg.fraction, cfg.seed)
    if cfg.split == "train+unlabeled":
        unlabeled = load_split(cfg.dataset, "unlabeled", cfg.data_dir, cfg.download)
        pretrain = pretrain.concat(stratified_fraction(unlabeled, cfg.fraction, cfg.seed))
    check(
        len(pretrain) >= cfg.batch_size,
        f"batch_size={cfg.batch_size} exceeds the {len(pretrain)} pretraining images",
    )
    bank = stratified_fraction(train, min(1.0, cfg.knn_bank / len(train)), cfg.seed + 1)

    views = (cfg.crop_scale_min, cfg.flip, cfg.color_jitter, cfg.grayscale, cfg.blur)
    normalize = Normalize(*MEAN_STD[cfg.dataset])
    feed = pipeline.feed_options(cfg, device)
    # drop_last: NT-Xent's difficulty depends on batch size; keep every step's negatives count equal.
    train_loader = pipeline.train_loader(
        pretrain,
        **feed,
        per_image=TwoViews(simclr_augmentation(cfg.dataset, size, *views)),
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        drop_last=True,
    )
    batch_transform = None
    if cfg.augment == "batched":
        batch_transform = BatchTwoViews(SimCLRAugment(normalize, size, *views, seed=cfg.seed, device=device))
    plain = ImageOnly(eval_transform(cfg.dataset, size, size))
    bank_loader = pipeline.eval_loader(bank, **feed, per_image=plain, normalize=normalize)
    query_loader = pipeline.eval_loader(val, **feed, per_image=plain, normalize=normalize)

    model = SimCLRModel(create_model(cfg.arch, num_classes=0, stem=cfg.stem), cfg.head, cfg.proj_dim)
    return SimCLRSetup(
        model=model,
        pretrain=pretrain,
        val=val,
        train_loader=train_loader,
        batch_transform=batch_transform,
        step=simclr_step(cfg.temperature),
        monitor=KnnMonitor(bank_loader, query_loader, device, cfg.knn_k),
        image_size=size,
    )
