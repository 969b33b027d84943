"""SimCLR's projection head g: none, MLP, or MLP with BatchNorm (SimCLR v2 style)."""

from __future__ import annotations

from torch import nn

HEADS = ("none", "mlp", "mlp_bn")


def create_head(kind: str, in_dim: int, out_dim: int = 128, hidden_dim: int | None = None) -> nn.Module:
    """``none`` uses the representation itself; ``mlp`` is Linear-ReLU-Linear as in the paper."""
    hidden_dim = hidden_dim or in_dim
    if kind == "none":
        return nn.Identity()
    if kind == "mlp":
        return nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)
        )
    if kind == "mlp_bn":
        return nn.Sequential(
            nn.Linear(in_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim, bias=False),
            nn.BatchNorm1d(out_dim, affine=False),
        )
    raise ValueError(f"unknown head {kind!r}; choose one of: {', '.join(HEADS)}")
