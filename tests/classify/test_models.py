"""Models by name: the parameter-match rule, vit-pytorch's exact ViT, features, the per-layer table."""

from __future__ import annotations

import csv
import io

import pytest
import torch
from timm.models.vision_transformer import Attention, VisionTransformer

from projects.core.errors import ConfigError
from projects.core.models import count_parameters, create_model, parameter_table, parameter_table_csv
from projects.core.vit import VIT_CONFIGS, InnerWidthAttention, create_vit

RESNET18_CIFAR100 = 11_220_132  # torchvision ResNet-18, CIFAR stem, 100-way head
DEEP_NARROW_VIT_CIFAR100 = 11_139_844  # vit-pytorch's ViT( dim 192, depth 25, 6x64 heads, MLP 384)


@pytest.fixture(scope="module")
def resnet18() -> torch.nn.Module:
    return create_model("resnet18", num_classes=100, stem="cifar")


def test_resnet18_count(resnet18: torch.nn.Module) -> None:
    assert count_parameters(resnet18) == RESNET18_CIFAR100


@pytest.mark.parametrize("name", sorted(VIT_CONFIGS))
def test_every_vit_config_within_two_percent_of_resnet18(name: str) -> None:
    model = create_model(name, num_classes=100, image_size=32)
    assert isinstance(model, VisionTransformer)  # timm's ViT, whatever the block
    assert abs(count_parameters(model) - RESNET18_CIFAR100) <= 0.02 * RESNET18_CIFAR100


def test_seed_vit_reproduces_the_seeds_count_and_shape() -> None:
    model = create_vit("vit_d192_l25", num_classes=100, image_size=32)
    assert count_parameters(model) == DEEP_NARROW_VIT_CIFAR100
    assert len(model.blocks) == 25 and model.num_features == 192
    attn = model.blocks[0].attn
    assert tuple(attn.qkv.weight.shape) == (3 * 6 * 64, 192)  # inner width 384 != dim 192
    assert attn.qkv.bias is None and attn.num_heads == 6
    assert tuple(model.blocks[0].mlp.fc1.weight.shape) == (384, 192)
    assert tuple(model.pos_embed.shape) == (1, 65, 192)  # 8x8 patches of 4 px + class token
    assert count_parameters(create_vit("vit_d192_l25", num_classes=100)) == DEEP_NARROW_VIT_CIFAR100


def test_wide_config_is_wider_and_shallower_than_the_seeds() -> None:
    seed, wide = VIT_CONFIGS["vit_d192_l25"], VIT_CONFIGS["vit_d256_l14"]
    assert wide["embed_dim"] > seed["embed_dim"] and wide["depth"] < seed["depth"]


def test_inner_width_attention_is_timms_attention_when_widths_agree() -> None:
    torch.manual_seed(0)
    reference = Attention(dim=96, num_heads=3, qkv_bias=False).eval()
    ours = InnerWidthAttention(dim=96, num_heads=3, dim_head=32).eval()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 17, 96)
    torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["vit_d192_l25", "vit_d256_l14", "resnet18"])
def test_num_classes_zero_returns_features(name: str) -> None:
    model = create_model(name, num_classes=0).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, model.num_features)


def test_patch_size_is_a_parameter_and_must_divide_the_image() -> None:
    model = create_model("vit_d192_l25", num_classes=10, image_size=32, patch_size=8)
    assert model.patch_embed.num_patches == 16
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(ConfigError, match="does not divide"):
        create_vit("vit_d192_l25", image_size=32, patch_size=5)


@pytest.mark.parametrize("name", ["vit_d192_l25", "resnet18"])
def test_parameter_table_sums_to_the_total(name: str) -> None:
    model = create_model(name, num_classes=100)
    rows = parameter_table(model)
    assert sum(row["count"] for row in rows) == count_parameters(model)
    logged = list(csv.DictReader(io.StringIO(parameter_table_csv(model))))
    assert logged[-1]["name"] == "TOTAL"
    assert sum(int(r["count"]) for r in logged[:-1]) == int(logged[-1]["count"]) == count_parameters(model)
