"""Projection and prediction heads: MLPs on the encoder's features.

SimCLR's head g is ``none``, ``mlp`` (Linear-ReLU-Linear, the paper) or ``mlp_bn`` (SimCLR v2 style, BN
after every layer); BYOL's and MoCo v3's projectors and predictors are :func:`mlp` with BatchNorm.
"""

from __future__ import annotations

from torch import nn

HEADS = ("none", "mlp", "mlp_bn")


def mlp(in_dim: int, hidden_dim: int, out_dim: int, layers: int = 2, bn: bool = True, last_bn: bool = False):
    """``layers`` Linear layers with BatchNorm (if ``bn``) + ReLU between them; ``last_bn`` adds a BN
    without affine parameters after the last (MoCo v3's projector and predictor)."""
    dims = [in_dim] + [hidden_dim] * (layers - 1) + [out_dim]
    modules: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        last = i == layers - 1
        modules.append(nn.Linear(a, b, bias=not ((bn and not last) or (last and last_bn))))
        if not last:
            modules += [nn.BatchNorm1d(b)] if bn else []
            modules.append(nn.ReLU(inplace=True))
    if last_bn:
        modules.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*modules)


def create_head(kind: str, in_dim: int, out_dim: int = 128, hidden_dim: int | None = None) -> nn.Module:
    """SimCLR's head g by name; ``none`` uses the representation itself."""
    hidden_dim = hidden_dim or in_dim
    if kind == "none":
        return nn.Identity()
    if kind == "mlp":
        return mlp(in_dim, hidden_dim, out_dim, bn=False)
    if kind == "mlp_bn":
        return mlp(in_dim, hidden_dim, out_dim, bn=True, last_bn=True)
    raise ValueError(f"unknown head {kind!r}; choose one of: {', '.join(HEADS)}")
