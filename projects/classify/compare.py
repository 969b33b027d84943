"""``vit_vs_cnn``: ResNet-18 and a ViT of equal size trained with one recipe and seed as nested child
runs of one parent, which logs the overlaid curves (SVG) and a summary table.

    mlflow run . -e vit_vs_cnn --env-manager local
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import mlflow

from projects.classify import train
from projects.classify.report import child_runs, comparison_figure, metric_histories, summary_row
from projects.core.config import param
from projects.core.entry import main
from projects.core.figures import log_figure_svg
from projects.core.loop import Callback, resolve_device
from projects.core.models import STEMS
from projects.core.tracking import finished_child, log_table, tracked_run
from projects.core.vit import VIT_CONFIGS

CNN = "resnet18"


@dataclass
class Config(train.Recipe):
    """Both models on the same recipe and seed; each may keep its own tuned lr / weight decay."""

    lr: float = param(1e-3, "peak lr of both models when per_model_lr=false (else resnet_lr / vit_lr)")
    weight_decay: float = param(
        0.0, "weight decay of both when per_model_lr=false (else resnet_/vit_weight_decay)"
    )
    stem: str = param(
        "cifar", "ResNet stem: cifar (3x3 stride 1, no max-pool) or imagenet (7x7/2 + max-pool)", STEMS
    )
    vit_model: str = param(
        "vit_d192_l25", "the ViT config to compare (see projects.core.vit)", tuple(VIT_CONFIGS)
    )
    per_model_lr: bool = param(
        True, "true: each model uses its own lr/weight decay below; false: both use lr, weight_decay"
    )
    resnet_lr: float = param(1e-3, "ResNet-18 peak lr when per_model_lr (tuned on CIFAR-100)")
    resnet_weight_decay: float = param(0.0, "ResNet-18 weight decay when per_model_lr (tuned on CIFAR-100)")
    vit_lr: float = param(4e-4, "ViT peak lr when per_model_lr (tuned on CIFAR-100)")
    vit_weight_decay: float = param(1e-5, "ViT weight decay when per_model_lr (tuned on CIFAR-100)")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.children()  # validates both children's configs (e.g. the ViT patch) before anything runs

    def children(self) -> list[train.Config]:
        """One ``classify`` config per model: every recipe field shared, only model/lr/wd differ."""
        shared = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(train.Config) if hasattr(self, f.name)
        }
        per_model = {
            CNN: (self.resnet_lr, self.resnet_weight_decay),
            self.vit_model: (self.vit_lr, self.vit_weight_decay),
        }
        configs = []
        for model, (lr, weight_decay) in per_model.items():
            values = {**shared, "model": model}
            if self.per_model_lr:
                values.update(lr=lr, weight_decay=weight_decay)
            configs.append(train.Config(**values))
        return configs


HEADLINE = ("test_top1", "test_top5", "best_val_top1")


def run(cfg: Config, *, callbacks: Sequence[Callback] = (), nested: bool = False) -> dict[str, float]:
    device = resolve_device(cfg.device)
    with tracked_run(
        cfg,
        "vit_vs_cnn",
        nested=nested,
        device=device,
        checkpointed=False,
    ) as tr:
        results: dict[str, float] = {}
        finals = []
        for child in cfg.children():
            final = finished_child(child, "classify") or train.run(child, callbacks=callbacks, nested=True)
            # vit/* and resnet18/*: the same metric names whichever ViT config is compared
            role = "vit" if child.model in VIT_CONFIGS else child.model
            results.update({f"{role}/{k}": final[k] for k in HEADLINE})
            finals.append(final)
        # The parent's own test_top1 / test_top5: the model that validation picks (never chosen on test).
        chosen = max(finals, key=lambda final: final["best_val_top1"])
        results.update({k: chosen[k] for k in HEADLINE})
        mlflow.log_metrics(results)
        # Curves come back from MLflow (what was logged), not from memory: the report is what the UI shows.
        runs = child_runs(tr.run_id)
        histories = {run.data.params["model"]: metric_histories(run.info.run_id) for run in runs}
        title = f"ViT vs CNN on {cfg.dataset} (seed {cfg.seed}, {cfg.epochs} epochs)"
        log_figure_svg(comparison_figure(histories, title), "vit_vs_cnn.svg")
        log_table(
            [summary_row(run, histories[run.data.params["model"]]) for run in runs], "vit_vs_cnn_table.json"
        )
        return results


if __name__ == "__main__":
    main(Config, run)
