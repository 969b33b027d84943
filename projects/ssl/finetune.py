"""``finetune``: the whole network (encoder + a new head) trained on the labelled dataset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from projects.core.classification import ClassifierConfig, fit_classifier
from projects.core.config import check, param
from projects.core.entry import main
from projects.core.loop import Callback
from projects.core.train_config import DistributedParams
from projects.ssl.encoders import load_encoder
from projects.ssl.eval_config import EncoderParams, logged_protocol

FINETUNE_HEADS = ("linear", "mlp")


@dataclass
class Config(DistributedParams, EncoderParams, ClassifierConfig):
    protocol: str = param(
        "finetune", "evaluation protocol (fixed for this entry point; logged)", ("finetune",)
    )
    head: str = param("mlp", "new classification head: linear, or a 2-layer MLP", FINETUNE_HEADS)
    head_hidden: int = param(512, "hidden width of the MLP head")
    epochs: int = param(50, "fine-tuning epochs")
    lr: float = param(1e-3, "peak learning rate")
    weight_decay: float = param(5e-4, "weight decay")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_encoder()
        check(self.head_hidden > 0, f"head_hidden must be > 0, got {self.head_hidden}")


def classification_head(kind: str, in_dim: int, num_classes: int, hidden: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(in_dim, num_classes)
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes))


def run(cfg: Config, *, callbacks: Sequence[Callback] = (), nested: bool = False) -> dict[str, float]:
    torch.manual_seed(cfg.seed)
    encoder = load_encoder(cfg.encoder, cfg.arch, cfg.stem, cfg.weights_path)  # before any data
    for p in encoder.parameters():
        p.requires_grad_(True)
    return fit_classifier(
        cfg,
        lambda classes: nn.Sequential(
            encoder, classification_head(cfg.head, encoder.num_features, classes, cfg.head_hidden)
        ),
        entry_point="finetune",
        registered_name=f"finetune-{cfg.arch}",
        callbacks=callbacks,
        nested=nested,
        tags=logged_protocol("finetune", cfg.encoder),
    )


if __name__ == "__main__":
    main(Config, run)
