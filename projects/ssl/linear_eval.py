"""``linear_eval``: the linear classification protocol with a frozen encoder.

Features of the (un-augmented) train and test images are computed once and standardised; a linear
classifier is then trained on them, which takes seconds per epoch. Top-1/top-5 on the test split are the
result. The classifier minimises the same objective as the probe monitor and the benchmarks' offline probe
(:func:`projects.core.evaluate.logistic_probe_accuracy`: cross-entropy plus an L2 penalty, Adam's coupled
weight decay), so the three give the same figure on the same features.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import mlflow
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from projects.core import pipeline
from projects.core.batch_augment import Normalize
from projects.core.config import check, check_shares, param
from projects.core.data import (
    LABEL_FRACTION_HELP,
    load_split,
    num_classes,
    split_train_val,
    stratified_fraction,
)
from projects.core.datasets import dataset_names, get_dataset, resolve_image_size
from projects.core.entry import main
from projects.core.evaluate import PROBE_WEIGHT_DECAY, extract_features, validate
from projects.core.fit import fit_in_run
from projects.core.loop import Callback, autocast, make_loader, resolve_device
from projects.core.optim import OPTIMIZERS
from projects.core.tracking import log_dataset, tracked_run
from projects.core.train_config import TrainConfig
from projects.core.transforms import ImageOnly, eval_transform
from projects.ssl.encoders import freeze, load_encoder
from projects.ssl.eval_config import EncoderParams, logged_protocol


@dataclass
class Config(EncoderParams, TrainConfig):
    protocol: str = param("linear", "evaluation protocol (fixed for this entry point; logged)", ("linear",))
    dataset: str = param("cifar100", "labelled dataset of the probe", dataset_names())
    label_fraction: float = param(1.0, LABEL_FRACTION_HELP)
    image_size: int = param(
        0,
        "resize inputs to this side (0 = native), e.g. for ImageNet-stem encoders; dataset=folder: required",
    )
    val_fraction: float = param(0.1, "share of the training split held out for per-epoch validation")
    epochs: int = param(100, "epochs of the linear classifier")
    batch_size: int = param(256, "feature vectors per step")
    optimizer: str = param(
        "adam", "optimiser (timm's factory); adam's weight decay is an L2 penalty", OPTIMIZERS
    )
    lr: float = param(1e-3, "peak learning rate")
    weight_decay: float = param(
        PROBE_WEIGHT_DECAY,
        "L2 penalty of the classifier on standardised features, as in the probe monitor and the benchmarks",
    )
    warmup_fraction: float = param(0.0, "share of the steps in linear warmup")
    register: bool = param(False, "register encoder + linear head as a classifier")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_encoder()
        check_shares(self)
        check(self.image_size >= 0, f"image_size must be >= 0, got {self.image_size}")
        resolve_image_size(self.dataset, self.image_size)  # dataset=folder needs an image_size


def linear_step(model: nn.Module, batch) -> tuple[torch.Tensor, int]:
    features, labels = batch
    return F.cross_entropy(model(features), labels), len(labels)


def run(cfg: Config, *, callbacks: Sequence[Callback] = (), nested: bool = False) -> dict[str, float]:
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    encoder = freeze(load_encoder(cfg.encoder, cfg.arch, cfg.stem, cfg.weights_path)).to(
        device
    )  # before any data
    spec = get_dataset(cfg.dataset)
    size = resolve_image_size(cfg.dataset, cfg.image_size)
    full = load_split(cfg.dataset, "train", cfg.data_dir, cfg.download, cfg.image_size)
    classes = num_classes(full)  # before the test split: unlabelled images fail here, saying why
    test = load_split(cfg.dataset, "test", cfg.data_dir, cfg.download, cfg.image_size)
    train, val = split_train_val(full, cfg.val_fraction, cfg.seed)
    train = stratified_fraction(train, cfg.label_fraction, cfg.seed)
    plain = ImageOnly(eval_transform(cfg.dataset, size, full.images.shape[1]))
    tags = logged_protocol("linear", cfg.encoder)
    with tracked_run(cfg, "linear_eval", nested=nested, tags=tags, device=device) as tr:
        log_dataset(train.images, train.labels, train.name, cfg.data_dir, "train")
        log_dataset(test.images, test.labels, f"{cfg.dataset}-test", cfg.data_dir, "test")
        start = time.perf_counter()
        feats = {}
        normalize = Normalize(spec.mean, spec.std, size=size)
        feed = pipeline.feed_options(cfg, device)
        for name, split in (("train", train), ("val", val), ("test", test)):
            loader = pipeline.eval_loader(split, **feed, per_image=plain, normalize=normalize)
            with autocast(cfg.precision, device):
                feats[name] = extract_features(encoder, loader, device)
        mlflow.log_metric("feature_time_s", time.perf_counter() - start)
        # Standardise with training statistics: one lr then suits every encoder's feature scale.
        mean, std = feats["train"][0].mean(0), feats["train"][0].std(0).clamp_min(1e-6)
        loaders = {
            name: make_loader(
                TensorDataset((x - mean) / std, y), cfg.batch_size, name == "train", 0, seed=cfg.seed
            )
            for name, (x, y) in feats.items()
        }
        head = nn.Linear(feats["train"][0].shape[1], classes)
        trainer, logs = fit_in_run(
            tr,
            cfg,
            head,
            loaders["train"],
            linear_step,
            evaluate=lambda m: validate(m, loaders["val"], device),
            monitor="val_top1",
            device=device,
            callbacks=callbacks,
            precision="fp32",
            progress=False,
            samples="features",
        )
        final = {**logs, **validate(head, loaders["test"], device, prefix="test")}
        mlflow.log_metrics({k: final[k] for k in ("test_top1", "test_top5", "test_loss")})
        if cfg.register:
            import numpy as np

            from projects.core.registry import log_and_register

            classifier = nn.Sequential(encoder, Standardize(mean, std), head)
            example = np.zeros((1, 3, size, size), dtype=np.float32)
            log_and_register(classifier, f"linear-{cfg.arch}", "test_top1", final["test_top1"], example)
        return final


class Standardize(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


if __name__ == "__main__":
    main(Config, run)
