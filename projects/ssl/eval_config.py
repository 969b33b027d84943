"""Parameters shared by the two evaluation protocols (linear probe, fine-tuning)."""

from __future__ import annotations

from dataclasses import dataclass

from projects.core.config import check_choice, param
from projects.core.models import STEMS, model_names
from projects.ssl.encoders import check_encoder_spec


@dataclass
class EncoderParams:
    """Mixin: which encoder to evaluate. Subclasses call ``check_encoder`` in ``__post_init__``."""

    encoder: str = param(
        "random", "random | imagenet | runs:/<id>/model | models:/<name>@<alias> | checkpoint path"
    )
    arch: str = param("resnet18", "architecture of random/imagenet/checkpoint encoders (a ViT config too)")
    stem: str = param(
        "cifar", "stem for random/checkpoint encoders (imagenet weights use the imagenet stem)", STEMS
    )
    weights_path: str = param(
        "", "local torchvision ImageNet weights file for encoder=imagenet (offline use)"
    )

    def check_encoder(self) -> None:
        check_encoder_spec(self.encoder)
        check_choice("arch", self.arch, model_names())


def logged_protocol(protocol: str, encoder: str) -> dict[str, str]:
    """Tags that make the protocol and encoder kind explicit in every evaluation run."""
    from projects.ssl.encoders import encoder_kind

    return {"protocol": protocol, "encoder_kind": encoder_kind(encoder)}
