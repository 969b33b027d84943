"""``ssl_study``: the seeds' whole comparison in one command.

SimCLR at several pretraining fractions (and datasets), each encoder evaluated by linear probe on the
evaluation dataset, plus baselines — ImageNet-supervised features and random features (linear probe)
and a ResNet-18 trained from scratch — as child runs of one parent. The parent logs a plotly figure
(probe top-1 vs pretraining images, baselines as lines) and a summary table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mlflow
import plotly.graph_objects as go

from projects.core.config import check, param
from projects.core.entry import main
from projects.core.errors import CheckpointError
from projects.core.loop import DEVICES, PRECISIONS
from projects.core.tracking import checkpoint_dir, finished_child, log_figure_html, log_table, tracked_run
from projects.ssl import linear_eval, simclr, supervised

log = logging.getLogger(__name__)
BASELINES = ("imagenet", "random", "supervised")


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _is_fraction(text: str) -> bool:
    try:
        return 0 < float(text) <= 1
    except ValueError:
        return False


@dataclass
class Config:
    pretrain_datasets: str = param("cifar10", "comma-separated SimCLR pretraining datasets")
    fractions: str = param("0.01,0.1,0.5,1.0", "comma-separated pretraining fractions")
    eval_dataset: str = param("cifar100", "labelled dataset of the linear probes and the supervised baseline")
    baselines: str = param("imagenet,random,supervised", "comma-separated baselines")
    pretrain_epochs: int = param(100, "SimCLR epochs per pretraining run")
    eval_epochs: int = param(100, "linear-probe epochs")
    supervised_epochs: int = param(100, "epochs of the from-scratch baseline")
    eval_fraction: float = param(
        1.0, "share of the labelled training split used by probes and the supervised baseline"
    )
    batch_size: int = param(256, "SimCLR batch size")
    temperature: float = param(0.5, "NT-Xent temperature")
    head: str = param("mlp", "projection head", ("none", "mlp", "mlp_bn"))
    lr: float = param(1e-3, "SimCLR learning rate")
    weights_path: str = param("", "local ImageNet weights for the imagenet baseline")
    knn_bank: int = param(5000, "kNN monitor bank size of the SimCLR runs")
    data_dir: str = param("data", "dataset folder")
    download: bool = param(True, "download missing datasets")
    seed: int = param(0, "seed of every child run")
    device: str = param("auto", "device", DEVICES)
    precision: str = param("auto", "precision", PRECISIONS)
    num_workers: int = param(2, "DataLoader workers")
    resume: bool = param(True, "resume interrupted child runs")

    def __post_init__(self) -> None:
        datasets = _split(self.pretrain_datasets)
        check(bool(datasets), "pretrain_datasets is empty")
        fractions = _split(self.fractions)
        check(bool(fractions), "fractions is empty")
        for text in fractions:
            check(_is_fraction(text), f"fractions must be numbers in (0, 1], got {text!r}")
        for name in _split(self.baselines):
            check(name in BASELINES, f"unknown baseline {name!r}; choose from: {', '.join(BASELINES)}")
        # Children validate everything else; building them now fails fast, before any compute.
        for child in self.simclr_configs() + [self.probe_config("random")]:
            assert child is not None

    def common(self) -> dict[str, Any]:
        return {
            "data_dir": self.data_dir,
            "download": self.download,
            "seed": self.seed,
            "device": self.device,
            "precision": self.precision,
            "num_workers": self.num_workers,
            "resume": self.resume,
        }

    def simclr_configs(self) -> list[simclr.Config]:
        return [
            simclr.Config(
                dataset=dataset,
                fraction=float(fraction),
                epochs=self.pretrain_epochs,
                batch_size=self.batch_size,
                temperature=self.temperature,
                head=self.head,
                lr=self.lr,
                knn_bank=self.knn_bank,
                register=False,
                **self.common(),
            )
            for dataset in _split(self.pretrain_datasets)
            for fraction in _split(self.fractions)
        ]

    def probe_config(self, encoder: str) -> linear_eval.Config:
        return linear_eval.Config(
            encoder=encoder,
            dataset=self.eval_dataset,
            epochs=self.eval_epochs,
            fraction=self.eval_fraction,
            weights_path=self.weights_path,
            **self.common(),
        )

    def supervised_config(self) -> supervised.Config:
        return supervised.Config(
            dataset=self.eval_dataset,
            epochs=self.supervised_epochs,
            fraction=self.eval_fraction,
            register=False,
            **self.common(),
        )


def figure(rows: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure()
    for dataset in sorted({r["pretrain_dataset"] for r in rows if r["kind"] == "simclr"}):
        points = sorted(
            (r for r in rows if r.get("pretrain_dataset") == dataset), key=lambda r: r["pretrain_images"]
        )
        fig.add_trace(
            go.Scatter(
                x=[r["pretrain_images"] for r in points],
                y=[r["test_top1"] for r in points],
                mode="lines+markers",
                name=f"SimCLR on {dataset} (linear probe)",
                text=[f"fraction {r['fraction']:g}" for r in points],
            )
        )
    for r in rows:
        if r["kind"] != "simclr":
            fig.add_hline(
                y=r["test_top1"], line_dash="dash", annotation_text=f"{r['name']}: {r['test_top1']:.1f}%"
            )
    fig.update_layout(
        title="Test top-1 vs SimCLR pretraining data size",
        xaxis_title="pretraining images",
        yaxis_title="test top-1 (%)",
        xaxis_type="log",
    )
    return fig


def run(cfg: Config) -> dict[str, float]:
    rows: list[dict[str, Any]] = []
    with tracked_run(cfg, "ssl_study", run_name="ssl-study", checkpointed=False):
        for child in cfg.simclr_configs():
            pre = finished_child(child, "simclr") or simclr.run(child, nested=True)
            checkpoint = str(checkpoint_dir(pre["run_id"]) / "last.pt")
            probe_cfg = cfg.probe_config(checkpoint)
            probe = finished_child(probe_cfg, "linear_eval") or linear_eval.run(probe_cfg, nested=True)
            rows.append(
                {
                    "kind": "simclr",
                    "name": f"simclr-{child.dataset}-{child.fraction:g}",
                    "pretrain_dataset": child.dataset,
                    "fraction": child.fraction,
                    "pretrain_images": int(pre["pretrain_images"]),
                    "knn_top1": pre["knn_top1"],
                    "test_top1": probe["test_top1"],
                    "test_top5": probe["test_top5"],
                }
            )
        for baseline in _split(cfg.baselines):
            if baseline == "supervised":
                sup_cfg = cfg.supervised_config()
                result = finished_child(sup_cfg, "supervised") or supervised.run(sup_cfg, nested=True)
                name = "supervised from scratch"
            else:
                try:
                    probe_cfg = cfg.probe_config(baseline)
                    result = finished_child(probe_cfg, "linear_eval") or linear_eval.run(
                        probe_cfg, nested=True
                    )
                except CheckpointError as exc:  # e.g. offline without ImageNet weights: say so, keep going
                    log.warning("baseline %s skipped: %s", baseline, exc)
                    mlflow.set_tag(f"baseline.{baseline}", f"skipped: {exc}")
                    continue
                name = f"{baseline} features (linear probe)"
            rows.append(
                {
                    "kind": baseline,
                    "name": name,
                    "test_top1": result["test_top1"],
                    "test_top5": result["test_top5"],
                }
            )
        log_figure_html(figure(rows), "ssl_study.html")
        log_table(rows, "ssl_study_table.json")
        best = max((r for r in rows if r["kind"] == "simclr"), key=lambda r: r["test_top1"])
        mlflow.log_metric("best_simclr_test_top1", best["test_top1"])
        return {"best_simclr_test_top1": best["test_top1"]}


if __name__ == "__main__":
    main(Config, run)
