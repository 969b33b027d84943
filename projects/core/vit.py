"""Vision Transformers for small images, built on timm's ``VisionTransformer``.

Configs are named by width and depth (``vit_d192_l25``: dim 192, 25 layers).
``create_vit("vit_d192_l25", num_classes=100)``: 4x4 patches, dim 192, depth 25, 6 heads of 64 dims
(attention inner width 384 != dim), MLP 384 -> 11,139,844 parameters, the same layout and count as
lucidrains' vit-pytorch ``ViT(dim=192, depth=25, heads=6, dim_head=64, mlp_dim=384)``: LayerNorm -> Linear -> LayerNorm patch embedding,
class token, learned position embedding (65 x dim), pre-norm blocks with a bias-free qkv projection,
final LayerNorm, linear head. timm 0.6.7 ties head_dim to dim // heads, so that config swaps in
:class:`InnerWidthAttention` through ``block_fn``; configs whose heads * dim_head == dim are plain timm.
Every config here is sized within 2% of ResNet-18's 11,220,132 parameters (CIFAR stem, 100 classes).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from timm.models.layers import to_2tuple
from timm.models.vision_transformer import Block, PatchEmbed, VisionTransformer
from torch import nn

from projects.core.errors import ConfigError

DEFAULT_PATCH_SIZE = 4
# patch_norm: vit-pytorch's LayerNorm-Linear-LayerNorm patch embedding (else timm's conv PatchEmbed).
_DEEP_NARROW = {
    "embed_dim": 192,
    "depth": 25,
    "num_heads": 6,
    "dim_head": 64,
    "mlp_dim": 384,
    "qkv_bias": False,
    "patch_norm": True,
}
VIT_CONFIGS: dict[str, dict[str, Any]] = {
    "vit_d192_l25": _DEEP_NARROW,  # deep and narrow, vit-pytorch's layout
    # Wider and shallower, same size: standard timm ViTs (head dim 64 = dim / heads, MLP 4x, conv patches).
    "vit_d256_l14": {
        "embed_dim": 256,
        "depth": 14,
        "num_heads": 4,
        "dim_head": 64,
        "mlp_dim": 1024,
        "qkv_bias": True,
        "patch_norm": False,
    },
    "vit_d320_l9": {
        "embed_dim": 320,
        "depth": 9,
        "num_heads": 5,
        "dim_head": 64,
        "mlp_dim": 1280,
        "qkv_bias": True,
        "patch_norm": False,
    },
}


class InnerWidthAttention(nn.Module):
    """timm's ``Attention`` with ``heads * dim_head`` decoupled from ``dim`` (vit-pytorch's ``dim_head``)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        dim_head: int,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ):
        super().__init__()
        self.num_heads, self.dim_head = num_heads, dim_head
        inner = num_heads * dim_head
        self.qkv = nn.Linear(dim, inner * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(inner, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.dim_head).permute(2, 0, 3, 1, 4).unbind(0)
        # Fused kernel; same maths as timm's softmax(q k^T / sqrt(dim_head)) v.
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, -1)))


class InnerWidthBlock(Block):
    """timm's pre-norm ``Block`` (norms, MLP, layer scale, drop path) with :class:`InnerWidthAttention`."""

    def __init__(self, dim: int, num_heads: int, *, dim_head: int, **kwargs: Any):
        super().__init__(dim, num_heads, **kwargs)
        self.attn = InnerWidthAttention(
            dim,
            num_heads,
            dim_head,
            qkv_bias=kwargs.get("qkv_bias", False),
            attn_drop=kwargs.get("attn_drop", 0.0),
            proj_drop=kwargs.get("drop", 0.0),
        )


class NormPatchEmbed(nn.Module):
    """vit-pytorch's patch embedding: flatten p x p patches, LayerNorm -> Linear -> LayerNorm.

    Accepts timm's ``embed_layer`` arguments and exposes ``num_patches`` as timm's ``PatchEmbed`` does.
    """

    def __init__(
        self, img_size: int = 32, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 192, **_: Any
    ):
        super().__init__()
        self.img_size, self.patch_size = to_2tuple(img_size), to_2tuple(patch_size)
        self.grid_size = (self.img_size[0] // self.patch_size[0], self.img_size[1] // self.patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        patch_dim = in_chans * self.patch_size[0] * self.patch_size[1]
        self.norm_in = nn.LayerNorm(patch_dim)
        self.proj = nn.Linear(patch_dim, embed_dim)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, q = self.patch_size
        x = F.unfold(x, kernel_size=(p, q), stride=(p, q)).transpose(1, 2)  # (B, patches, C*p*q)
        return self.norm(self.proj(self.norm_in(x)))


def create_vit(
    name: str, num_classes: int = 0, image_size: int = 32, patch_size: int | None = None
) -> nn.Module:
    """A ViT config by name; ``num_classes=0`` returns the class-token features (``num_features`` wide)."""
    if name not in VIT_CONFIGS:
        raise ConfigError(f"unknown ViT {name!r}; choose one of: {', '.join(VIT_CONFIGS)}")
    patch_size = patch_size or DEFAULT_PATCH_SIZE
    if patch_size <= 0 or image_size % patch_size:
        raise ConfigError(f"patch_size {patch_size} does not divide image size {image_size} for {name}")
    cfg = VIT_CONFIGS[name]
    dim, heads, dim_head = cfg["embed_dim"], cfg["num_heads"], cfg["dim_head"]
    # timm's own Block where it expresses the config (head dim = dim / heads), the variant otherwise.
    block_fn = Block if heads * dim_head == dim else partial(InnerWidthBlock, dim_head=dim_head)
    return VisionTransformer(
        img_size=image_size,
        patch_size=patch_size,
        num_classes=num_classes,
        global_pool="token",
        embed_dim=dim,
        depth=cfg["depth"],
        num_heads=heads,
        mlp_ratio=cfg["mlp_dim"] / dim,
        qkv_bias=cfg["qkv_bias"],
        class_token=True,
        embed_layer=NormPatchEmbed if cfg["patch_norm"] else PatchEmbed,
        block_fn=block_fn,
    )
