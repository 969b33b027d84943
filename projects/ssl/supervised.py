"""``supervised``: the from-scratch baseline, a ResNet-18 trained on CIFAR-100 with labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from projects.core.classification import NamedModelConfig, train_named_model
from projects.core.config import param
from projects.core.entry import main
from projects.core.loop import Callback
from projects.core.train_config import DistributedParams


@dataclass
class Config(DistributedParams, NamedModelConfig):
    epochs: int = param(100, "training epochs")
    lr: float = param(1e-3, "peak learning rate (after warmup)")
    weight_decay: float = param(5e-4, "decoupled weight decay")


def run(cfg: Config, *, callbacks: Sequence[Callback] = (), nested: bool = False) -> dict[str, float]:
    return train_named_model(cfg, entry_point="supervised", callbacks=callbacks, nested=nested)


if __name__ == "__main__":
    main(Config, run)
