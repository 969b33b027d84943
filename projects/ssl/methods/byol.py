"""BYOL (Grill et al. 2020): an online network (encoder, projector, predictor) predicts a momentum
target network's projection of the other view; the loss is symmetrised over the two views, and the
target follows the online encoder and projector by EMA after every step. No negatives.

    python -m projects.ssl.methods.byol --dataset cifar10 --epochs 100
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from projects.core.entry import main
from projects.core.loop import Callback
from projects.ssl.heads import mlp
from projects.ssl.losses.byol import byol_loss
from projects.ssl.methods.base import MomentumConfig, MomentumMethod
from projects.ssl.pretrain import pretrain


@dataclass
class Config(MomentumConfig):
    """BYOL's parameters: the base's and the momentum networks' (BYOL adds none)."""


class BYOL(MomentumMethod):
    name = "byol"

    def __init__(self, encoder: nn.Module, cfg: Config):
        projector = mlp(encoder.num_features, cfg.proj_hidden_dim, cfg.proj_dim)
        super().__init__(encoder, projector, mlp(cfg.proj_dim, cfg.pred_hidden_dim, cfg.proj_dim), cfg)

    def criterion(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return byol_loss(prediction, target)


def run(cfg: Config, *, callbacks: Sequence[Callback] = (), nested: bool = False) -> dict[str, Any]:
    return pretrain(cfg, BYOL, callbacks=callbacks, nested=nested)


if __name__ == "__main__":
    main(Config, run)
