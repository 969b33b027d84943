"""SimCLR (Chen et al. 2020, Algorithm 1): h = f(x), z = g(h) for two views of each image; NT-Xent over
the 2N projections, each view's partner the positive and the other 2N - 2 views the negatives.

    python -m projects.ssl.methods.simclr --dataset cifar10 --epochs 100
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
from projects.ssl.heads import HEADS, create_head
from projects.ssl.losses.ntxent import nt_xent
from projects.ssl.methods.base import SSLConfig, SSLMethod
from projects.ssl.pretrain import pretrain


@dataclass
class Config(SSLConfig):
    head: str = param("mlp", "projection head g", HEADS)
    proj_dim: int = param(128, "output dimension of g")
    temperature: float = param(0.5, "NT-Xent temperature tau")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        check(self.proj_dim > 0, f"proj_dim must be > 0, got {self.proj_dim}")


class SimCLR(SSLMethod):
    name = "simclr"

    def __init__(self, encoder: nn.Module, cfg: Config):
        super().__init__(encoder)
        self.head = create_head(cfg.head, encoder.num_features, cfg.proj_dim)
        self.temperature = cfg.temperature

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))

    def loss(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        z = self.project(torch.cat([view1, view2]))  # one pass: BatchNorm sees all 2N views
        return nt_xent(z[: len(view1)], z[len(view1) :], self.temperature)


def run(cfg: Config, *, callbacks: Sequence[Callback] = (), nested: bool = False) -> dict[str, Any]:
    return pretrain(cfg, SimCLR, callbacks=callbacks, nested=nested)


if __name__ == "__main__":
    main(Config, run)
