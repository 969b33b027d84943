"""``classify``: train one model by name (``resnet18``, ``vit_d192_l25``, ``vit_d256_l14``, ...) on CIFAR-100 with the
study's shared recipe: warmup + cosine, standard CIFAR augmentation + CutMix, label smoothing.

    mlflow run . -e classify -P model=vit_d192_l25 -P epochs=200 --env-manager local
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from projects.core.classification import ClassifierConfig, NamedModelConfig, train_named_model
from projects.core.config import check, param
from projects.core.entry import main
from projects.core.loop import Callback
from projects.core.train_config import DistributedParams
from projects.core.vit import DEFAULT_PATCH_SIZE, VIT_CONFIGS


@dataclass
class Recipe(ClassifierConfig):
    """The recipe ``classify`` and ``vit_vs_cnn`` share: one set of defaults: like-for-like runs."""

    epochs: int = param(200, "training epochs")
    batch_size: int = param(128, "images per step")
    lr: float = param(1e-3, "peak learning rate (after warmup); vit_vs_cnn's ViT uses 4e-4")
    weight_decay: float = param(0.0, "decoupled weight decay (AdamW) or L2 (SGD); vit_vs_cnn's ViT uses 1e-5")
    cutmix_prob: float = param(0.5, "probability that a batch is mixed (CutMix, or Mixup when enabled)")
    patch_size: int = param(DEFAULT_PATCH_SIZE, "ViT patch size in pixels; must divide the image size")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.patch_size > 0, f"patch_size must be > 0, got {self.patch_size}")

    def check_patch(self, model: str) -> None:
        """A ViT's patches must tile the image exactly (timm would silently drop the remainder)."""
        check(
            model not in VIT_CONFIGS or self.resolution % self.patch_size == 0,
            f"patch_size={self.patch_size} does not divide image size {self.resolution} for ViT {model!r}",
        )

    def model_kwargs(self, model: str) -> dict[str, int]:
        return {"patch_size": self.patch_size} if model in VIT_CONFIGS else {}


@dataclass
class Config(DistributedParams, Recipe, NamedModelConfig):
    """Train one model by name on the study's recipe."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_patch(self.model)


def run(cfg: Config, *, callbacks: Sequence[Callback] = (), nested: bool = False) -> dict[str, float]:
    return train_named_model(
        cfg,
        entry_point="classify",
        callbacks=callbacks,
        nested=nested,
        model_kwargs=cfg.model_kwargs(cfg.model),
    )


if __name__ == "__main__":
    main(Config, run)
