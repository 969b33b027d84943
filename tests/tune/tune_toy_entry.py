"""A tiny, deterministic entry module for the tune tests: same ``Config``/``run`` convention, same
``tracked_run`` + ``Trainer`` + callbacks path as the real entry points, but an epoch costs nothing.

Per-epoch ``score`` = quality(x) * epoch / epochs with quality 1.0 for x < bad_above (the good region) and
0.2 * (1 - x) above it, so a median pruner must stop the bad region's trials after its warm-up.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from projects.core.callbacks import MLflowLogger
from projects.core.config import check, param
from projects.core.entry import main
from projects.core.loop import Callback, Trainer
from projects.core.tracking import tracked_run


@dataclass
class Config:
    x: float = param(0.5, "the searched parameter, in [0, 1]")
    y: float = param(0.0, "a second parameter with no effect (for importances)")
    epochs: int = param(6, "epochs")
    bad_above: float = param(0.7, "x above this is the bad region")
    fail_above: float = param(2.0, "x above this raises in the first epoch (a FAIL trial)")
    sleep_s: float = param(0.0, "seconds per epoch, to make trials overlap in parallel tests")
    seed: int = param(0, "seed")
    resume: bool = param(True, "resume an interrupted run")
    register: bool = param(True, "unused; present because tune sets it")

    def __post_init__(self) -> None:
        check(0 <= self.x <= 1, f"x must be in [0, 1], got {self.x}")
        check(self.epochs > 0, f"epochs must be > 0, got {self.epochs}")


def score(cfg: Config, epoch: int) -> float:
    quality = 1.0 if cfg.x < cfg.bad_above else 0.2 * (1.0 - cfg.x)
    return quality * epoch / cfg.epochs


class PlainSGD:
    """Enough of an optimiser for ``Trainer``; torch.optim's first use imports torch._dynamo (seconds per
    worker process), which these tests do not need to pay for."""

    def __init__(self, params: list[torch.Tensor], lr: float):
        self.params = params
        self.param_groups = [{"lr": lr}]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            p -= self.param_groups[0]["lr"] * p.grad


def run(cfg: Config, *, callbacks: Sequence[Callback] = (), nested: bool = False) -> dict[str, float]:
    torch.manual_seed(cfg.seed)
    model = nn.Linear(2, 1)
    batch = torch.ones(4, 2)
    epoch = {"n": 0}

    def step(m: nn.Module, b: torch.Tensor) -> tuple[torch.Tensor, int]:
        return m(b).pow(2).mean(), len(b)

    def evaluate(m: nn.Module) -> dict[str, float]:
        epoch["n"] += 1
        if cfg.x > cfg.fail_above:
            raise RuntimeError(f"x={cfg.x} is in the failing region")
        time.sleep(cfg.sleep_s)
        return {"score": score(cfg, epoch["n"])}

    with tracked_run(cfg, "toy", run_name=f"toy-x{cfg.x:.3f}", nested=nested) as tr:
        trainer = Trainer(
            model,
            PlainSGD(list(model.parameters()), lr=0.01),
            [batch],
            step,
            epochs=cfg.epochs,
            evaluate=evaluate,
            callbacks=[MLflowLogger(tr.run_id), *callbacks],
            monitor="score",
            progress=False,
        )
        logs = trainer.fit()
        return {**logs, "final_score": logs["score"]}


if __name__ == "__main__":
    main(Config, run)
