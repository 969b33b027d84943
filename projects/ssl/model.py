"""SimCLR network: encoder f (a ResNet without its classifier) followed by projection head g."""

from __future__ import annotations

import torch
from torch import nn

from projects.ssl.heads import create_head


class SimCLRModel(nn.Module):
    def __init__(self, encoder: nn.Module, head: str = "mlp", proj_dim: int = 128):
        super().__init__()
        self.encoder = encoder
        self.head = create_head(head, encoder.num_features, proj_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))
