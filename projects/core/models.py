"""Models by name: ``create_model("resnet18", num_classes=100, stem="cifar")``.

``num_classes=0`` gives the encoder (the classifier replaced by identity; ``model.num_features``
is its output width). ViT configs live in :mod:`projects.core.vit` and are listed here too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torchvision import models as tvm

from projects.core.errors import CheckpointError

STEMS = ("cifar", "imagenet")
RESNETS: dict[str, tuple[Callable[..., tvm.ResNet], tvm.WeightsEnum]] = {
    "resnet18": (tvm.resnet18, tvm.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (tvm.resnet34, tvm.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (tvm.resnet50, tvm.ResNet50_Weights.IMAGENET1K_V2),
}


def model_names() -> list[str]:
    from projects.core.vit import VIT_CONFIGS

    return [*RESNETS, *VIT_CONFIGS]


def _imagenet_state_dict(name: str, weights_path: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights from ``weights_path`` or its download cache/network."""
    if weights_path:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise CheckpointError(f"weights_path {path} does not exist")
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # any unpickling failure means: not a state dict
            raise CheckpointError(
                f"weights_path {path} is not a torch state dict ({type(exc).__name__})"
            ) from None
    weights = RESNETS[name][1]
    try:
        return weights.get_state_dict(progress=False, check_hash=False)
    except OSError as exc:
        filename = Path(weights.url).name
        raise CheckpointError(
            f"ImageNet weights for {name} not cached and not downloadable ({exc}); put {filename} in "
            f"$TORCH_HOME/hub/checkpoints/ (default ~/.cache/torch) or pass weights_path=/path/to/{filename}"
        ) from None


def create_resnet(
    name: str, num_classes: int = 0, stem: str = "cifar", pretrained: bool = False, weights_path: str = ""
) -> tvm.ResNet:
    """torchvision ResNet; the CIFAR stem is a 3x3 stride-1 conv without max-pool (for 32x32 input)."""
    builder, _ = RESNETS[name]
    model = builder()
    if pretrained:
        model.load_state_dict(_imagenet_state_dict(name, weights_path))
    if stem == "cifar":
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    model.num_features = model.fc.in_features
    model.fc = nn.Linear(model.num_features, num_classes) if num_classes else nn.Identity()
    return model


def create_model(
    name: str,
    num_classes: int = 0,
    stem: str = "cifar",
    pretrained: bool = False,
    weights_path: str = "",
    image_size: int = 32,
    patch_size: int | None = None,
) -> nn.Module:
    """A model by name; every model exposes ``num_features`` (the encoder's output width).

    ``image_size`` and ``patch_size`` (None = the ViT default, 4) apply to ViTs only.
    """
    if name in RESNETS:
        return create_resnet(name, num_classes, stem, pretrained, weights_path)
    from projects.core.vit import VIT_CONFIGS, create_vit

    if name in VIT_CONFIGS:
        if pretrained:
            raise CheckpointError(f"{name} has no pretrained weights here; use pretrained=false")
        return create_vit(name, num_classes=num_classes, image_size=image_size, patch_size=patch_size)
    raise CheckpointError(f"unknown model {name!r}; choose one of: {', '.join(model_names())}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def parameter_table(model: nn.Module) -> list[dict[str, object]]:
    """One row per parameter tensor: name, shape, count (the per-layer appendix of a model report)."""
    return [
        {"name": name, "shape": "x".join(map(str, p.shape)), "count": p.numel()}
        for name, p in model.named_parameters()
    ]


def parameter_table_csv(model: nn.Module) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["name", "shape", "count"])
    writer.writeheader()
    writer.writerows(parameter_table(model))
    writer.writerow({"name": "TOTAL", "shape": "", "count": count_parameters(model)})
    return buffer.getvalue()


def log_model_summary(model: nn.Module, prefix: str = "") -> int:
    """Log the parameter count as an MLflow param and the per-layer table as an artifact."""
    import mlflow

    total = count_parameters(model)
    mlflow.log_param(f"{prefix}num_parameters", total)
    mlflow.log_text(parameter_table_csv(model), f"{prefix}parameter_table.csv")
    return total
