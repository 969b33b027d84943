"""MoCo v3 (Chen, Xie, He 2021): queries from the encoder, projector (3-layer MLP) and predictor;
keys from a momentum encoder and projector; the symmetric contrastive loss ctr(q1, k2) + ctr(q2, k1)
with the batch's other keys as negatives. ResNets and the ViT configs of :mod:`projects.core.vit` serve
as encoders (``arch``).

    python -m projects.ssl.methods.mocov3 --dataset cifar10 --arch vit --epochs 100
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from projects.core.config import check, param
from projects.core.entry import main
from projects.core.loop import Callback
from projects.ssl.heads import mlp
from projects.ssl.losses.mocov3 import mocov3_loss
from projects.ssl.methods.base import MomentumConfig, MomentumMethod
from projects.ssl.pretrain import pretrain


@dataclass
class Config(MomentumConfig):
    temperature: float = param(0.2, "contrastive temperature tau")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")


class MoCoV3(MomentumMethod):
    name = "mocov3"

    def __init__(self, encoder: nn.Module, cfg: Config):
        projector = mlp(encoder.num_features, cfg.proj_hidden_dim, cfg.proj_dim, layers=3, last_bn=True)
        predictor = mlp(cfg.proj_dim, cfg.pred_hidden_dim, cfg.proj_dim, layers=2, last_bn=True)
        super().__init__(encoder, projector, predictor, cfg)
        self.temperature = cfg.temperature

    def criterion(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return mocov3_loss(prediction, target, self.temperature)


def run(cfg: Config, *, callbacks: Sequence[Callback] = (), nested: bool = False) -> dict[str, Any]:
    return pretrain(cfg, MoCoV3, callbacks=callbacks, nested=nested)


if __name__ == "__main__":
    main(Config, run)
