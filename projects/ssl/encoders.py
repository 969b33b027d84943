"""Resolve an ``encoder`` parameter to a feature extractor (``num_features`` wide).

Accepted: ``random`` (untrained), ``imagenet`` (torchvision's ImageNet-supervised weights, or
``weights_path``), an MLflow model URI (``runs:/<id>/model``, ``models:/<name>@champion``), or a
pretraining checkpoint of any SSL method (``.../checkpoints/last.pt``: its ``encoder.*`` weights).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from projects.core.checkpoint import load_checkpoint
from projects.core.config import check
from projects.core.errors import CheckpointError
from projects.core.models import create_model
from projects.core.registry import load_model

KINDS = ("random", "imagenet")
URI_SCHEMES = ("runs:/", "models:/")


def check_encoder_spec(encoder: str) -> None:
    """Syntax check (no I/O beyond a file test), run in the config's validation."""
    ok = encoder in KINDS or encoder.startswith(URI_SCHEMES) or Path(encoder).expanduser().is_file()
    check(
        ok,
        f"encoder={encoder!r} is not random, imagenet, a runs:/ or models:/ URI, or an existing checkpoint",
    )


def encoder_kind(encoder: str) -> str:
    if encoder in KINDS:
        return encoder
    return "mlflow_model" if encoder.startswith(URI_SCHEMES) else "checkpoint"


def load_encoder(
    encoder: str, arch: str = "resnet18", stem: str = "cifar", weights_path: str = ""
) -> nn.Module:
    """An encoder ready for feature extraction; ``CheckpointError`` (one line) if it cannot be had."""
    if encoder == "random":
        return create_model(arch, num_classes=0, stem=stem)
    if encoder == "imagenet":
        return create_model(arch, num_classes=0, stem="imagenet", pretrained=True, weights_path=weights_path)
    if encoder.startswith(URI_SCHEMES):
        model = load_model(encoder)
        if not isinstance(model, nn.Module) or not hasattr(model, "num_features"):
            raise CheckpointError(f"{encoder} is not an encoder (expected a module with num_features)")
        return model
    state = load_checkpoint(encoder)
    weights = state.get("model", state)
    prefix = "encoder."
    encoder_weights = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    if not encoder_weights:
        raise CheckpointError(f"{encoder} holds no SSL encoder weights (no 'encoder.*' keys)")
    model = create_model(arch, num_classes=0, stem=stem)
    try:
        model.load_state_dict(encoder_weights)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{encoder} does not fit {arch} with the {stem} stem: {str(exc).splitlines()[0]}"
        ) from None
    return model


def freeze(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()
