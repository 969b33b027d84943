"""What every SSL method shares: its parameters (:class:`SSLConfig`), the module interface
(:class:`SSLMethod`: an ``encoder`` and a ``loss`` of two views) and momentum encoders
(:class:`MomentumMethod`, updated by :class:`MomentumUpdate` after every optimiser step).

Data, views, the quality monitor, tracking, checkpoints and registration live in :mod:`projects.ssl.pretrain`
and take any method; a method file adds only its parameters, its heads, its loss call and its views.
"""

from __future__ import annotations

import abc
import copy
import math
from dataclasses import dataclass, replace
from typing import ClassVar

import torch
from torch import nn

from projects.core.batch_augment import ViewParams
from projects.core.config import check, check_choice, check_positive, check_shares, param
from projects.core.datasets import dataset_names, get_dataset, resolve_image_size
from projects.core.loop import Callback, Trainer
from projects.core.models import STEMS, model_names
from projects.core.train_config import DistributedParams, TrainConfig
from projects.core.vit import DEFAULT_PATCH_SIZE, VIT_CONFIGS
from projects.ssl.monitors import monitor_metrics

MONITOR_OFF = "none"

PRETRAIN_SPLITS = ("train", "train+unlabeled")


@dataclass
class SSLConfig(DistributedParams, TrainConfig):
    """Parameters of every SSL method: data, encoder, optimisation, views and the quality monitor."""

    dataset: str = param("cifar10", "pretraining dataset", dataset_names())
    split: str = param(
        "train", "pretraining split; train+unlabeled adds STL-10's 100k unlabelled images", PRETRAIN_SPLITS
    )
    fraction: float = param(1.0, "seeded, class-stratified share of the pretraining split, in (0, 1]")
    image_size: int = param(0, "side of the training views; 0 = the dataset's native size (folder: required)")
    arch: str = param("resnet18", "encoder f: resnet18/34/50 or a ViT config (projects.core.vit)")
    stem: str = param("cifar", "ResNet stem (cifar: 3x3/1, no max-pool; imagenet: 7x7/2 + max-pool)", STEMS)
    patch_size: int = param(DEFAULT_PATCH_SIZE, "ViT patch size in pixels; must divide image_size")
    epochs: int = param(100, "pretraining epochs")
    batch_size: int = param(256, "images per step (2x views)")
    lr: float = param(1e-3, "peak learning rate (after warmup)")
    weight_decay: float = param(1e-4, "weight decay (not on biases and norm weights)")
    warmup_fraction: float = param(0.1, "share of the run's steps in linear warmup before cosine decay")
    crop_scale_min: float = param(0.08, "RandomResizedCrop minimum area share")
    flip: bool = param(True, "random horizontal flip")
    color_jitter: float = param(1.0, "colour-jitter strength s (p=0.8); 0 disables")
    grayscale: bool = param(True, "random grayscale (p=0.2)")
    blur: bool = param(False, "Gaussian blur; the papers skip it on 32-px images")
    val_fraction: float = param(
        0.1, "share of the labelled training split held out as the monitor's validation queries"
    )
    eval_metric: str = param(
        "probe_top1",
        "per-epoch quality figure that best.pt, pruning and champion follow: probe_top1 (logistic-regression "
        "probe on frozen features) or knn_top1 (weighted kNN); none for unlabelled data",
        (*monitor_metrics(), MONITOR_OFF),
    )
    monitor_bank: int = param(5000, "labelled training images the monitor fits on (probe set / kNN bank)")
    knn_k: int = param(20, "neighbours of the weighted kNN monitor")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_shares(self)
        check(
            self.batch_size >= 2, f"batch_size must be >= 2 (two views need a batch), got {self.batch_size}"
        )
        check(0 < self.crop_scale_min <= 1, f"crop_scale_min must be in (0, 1], got {self.crop_scale_min}")
        check(self.color_jitter >= 0, f"color_jitter must be >= 0, got {self.color_jitter}")
        check(self.monitor_bank >= 10, f"monitor_bank must be >= 10, got {self.monitor_bank}")
        check(self.knn_k >= 1, f"knn_k must be >= 1, got {self.knn_k}")
        check_choice("arch", self.arch, model_names())
        check(
            self.split == "train" or self.split in get_dataset(self.dataset).splits,
            f"split={self.split!r} does not exist for {self.dataset}; use split=train",
        )
        size = self.resolution
        check(
            self.arch not in VIT_CONFIGS or (self.patch_size > 0 and size % self.patch_size == 0),
            f"patch_size={self.patch_size} does not divide the {size}-px views of {self.arch}",
        )

    @property
    def monitor_metric(self) -> str | None:
        """The metric the monitor logs (``probe_top1``, ``knn_top1``); None with ``eval_metric=none``."""
        return None if self.eval_metric == MONITOR_OFF else self.eval_metric

    @property
    def resolution(self) -> int:
        """Side of the training views and evaluation images."""
        return resolve_image_size(self.dataset, self.image_size)

    def views(self) -> tuple[ViewParams, ViewParams]:
        """The two views' augmentations; symmetric SimCLR views unless a method says otherwise."""
        view = ViewParams.simclr(self.crop_scale_min, self.flip, self.color_jitter, self.grayscale, self.blur)
        return view, view


@dataclass
class AsymmetricViewsConfig(SSLConfig):
    """BYOL's views (Grill et al. 2020, Table 6), which MoCo v3 uses too: colour jitter (0.4, 0.4, 0.2,
    0.1) x s, blur p = 1.0 / 0.1 and solarisation p = 0 / 0.2 on the first / second view."""

    solarize: bool = param(True, "solarisation of the second view (p=0.2)")

    def views(self) -> tuple[ViewParams, ViewParams]:
        s = self.color_jitter
        shared = ViewParams(
            crop_scale_min=self.crop_scale_min,
            flip=self.flip,
            jitter=(0.4 * s, 0.4 * s, 0.2 * s, min(0.1 * s, 0.5)),
            jitter_p=0.8 if s > 0 else 0.0,
            grayscale_p=0.2 if self.grayscale else 0.0,
        )
        first = replace(shared, blur_p=1.0 if self.blur else 0.0)
        second = replace(shared, blur_p=0.1 if self.blur else 0.0, solarize_p=0.2 if self.solarize else 0.0)
        return first, second


class SSLMethod(nn.Module, abc.ABC):
    """An encoder f (registered after pretraining) plus whatever the method trains around it."""

    name: ClassVar[str]

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    @classmethod
    def from_config(cls, cfg: SSLConfig, encoder: nn.Module) -> SSLMethod:
        """The method for ``cfg`` around ``encoder`` (its heads sized to ``encoder.num_features``)."""
        return cls(encoder, cfg)  # type: ignore[call-arg]

    @abc.abstractmethod
    def loss(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        """The training loss of a batch of view pairs (row i of both views is image i)."""

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        """The loss: a training step calls the module, so ``DistributedDataParallel`` sees the pass."""
        return self.loss(view1, view2)


@dataclass
class MomentumConfig(AsymmetricViewsConfig):
    """Parameters of methods with a projector, a predictor and a momentum (EMA) target network."""

    proj_hidden_dim: int = param(4096, "hidden width of the projector")
    proj_dim: int = param(256, "output dimension of the projector and predictor")
    pred_hidden_dim: int = param(4096, "hidden width of the predictor")
    momentum_base: float = param(0.99, "EMA momentum tau at the start (cosine schedule up to momentum_final)")
    momentum_final: float = param(1.0, "EMA momentum tau at the last step")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "proj_hidden_dim", "proj_dim", "pred_hidden_dim")
        check(
            0 <= self.momentum_base <= self.momentum_final <= 1,
            f"need 0 <= momentum_base <= momentum_final <= 1, got {self.momentum_base}, {self.momentum_final}",
        )


def frozen_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` that the optimiser never sees (no gradients): a momentum network."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


class MomentumMethod(SSLMethod):
    """Online network (encoder, projector, predictor) against a momentum target (encoder, projector)
    that follows it by EMA: xi <- tau xi + (1 - tau) theta (BYOL, MoCo v3).

    The loss is ``criterion(prediction, target)`` of each view's prediction against the target's
    projection of the other view, summed over both orders. tau rises from ``momentum_base`` to
    ``momentum_final`` on BYOL's cosine schedule over the training steps. Target networks are
    submodules without gradients, so they are in the state dict (every checkpoint) but not in the optimiser.
    """

    def __init__(self, encoder: nn.Module, projector: nn.Module, predictor: nn.Module, cfg: MomentumConfig):
        super().__init__(encoder)
        self.projector, self.predictor = projector, predictor
        self.momentum_encoder = frozen_copy(encoder)
        self.momentum_projector = frozen_copy(projector)
        self.momentum_base, self.momentum_final = cfg.momentum_base, cfg.momentum_final

    @abc.abstractmethod
    def criterion(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of predictions of one view against the target's projections of the other."""

    def loss(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        n, x = len(view1), torch.cat([view1, view2])  # one pass: BatchNorm sees all 2N views
        p = self.predictor(self.projector(self.encoder(x)))
        with torch.no_grad():
            z = self.momentum_projector(self.momentum_encoder(x))
        return self.criterion(p[:n], z[n:]) + self.criterion(p[n:], z[:n])

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(online, target) module pairs that the EMA updates."""
        return [(self.encoder, self.momentum_encoder), (self.projector, self.momentum_projector)]

    def momentum(self, progress: float) -> float:
        """tau at ``progress`` in [0, 1] of training: final - (final - base) (cos(pi progress) + 1) / 2."""
        base, final = self.momentum_base, self.momentum_final
        return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2

    @torch.no_grad()
    def update_momentum(self, progress: float) -> float:
        tau = self.momentum(progress)
        for online, target in self.momentum_pairs():
            for theta, xi in zip(online.parameters(), target.parameters(), strict=True):
                xi.lerp_(theta, 1 - tau)  # xi + (1 - tau)(theta - xi)
        return tau


class MomentumUpdate(Callback):
    """Trainer callback: the EMA update of a :class:`MomentumMethod` after every optimiser step, at
    progress global_step / total steps (so a resumed run continues the same schedule)."""

    def __init__(self, method: MomentumMethod):
        self.method = method
        self.total_steps = 1

    def on_fit_start(self, trainer: Trainer) -> None:
        self.total_steps = max(1, trainer.epochs * len(trainer.train_loader))

    def on_optimizer_step(self, trainer: Trainer) -> None:
        self.method.update_momentum(min(1.0, trainer.global_step / self.total_steps))
