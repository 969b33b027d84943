"""``ssl_study``: SSL methods x pretraining datasets x data fractions, each encoder judged by linear probe
at several label fractions, against baselines, in one command.

Every pretraining run (``methods`` x ``pretrain_datasets`` x ``fractions``) is probed on
``eval_dataset`` with 1%, 10% and 100% of its labelled training images (``label_fractions``, the
SimCLR paper's semi-supervised protocol); the baselines (ImageNet-supervised and random features by
probe, a ResNet-18 trained from scratch) are run at the same label fractions. All are child runs of one
parent, which logs an SVG figure (probe top-1 vs pretraining images, baselines as lines) and the table.
A resumed parent skips children that finished.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mlflow

from projects.core.config import check, from_dict, param, parse_overrides
from projects.core.entry import main
from projects.core.errors import CheckpointError
from projects.core.figures import log_figure_svg
from projects.core.loop import DEVICES, PRECISIONS
from projects.core.tracking import checkpoint_dir, finished_child, log_table, nested_run_name, tracked_run
from projects.ssl import linear_eval, supervised
from projects.ssl.figures import BASELINE_NAMES, figure
from projects.ssl.methods import method_module, method_names
from projects.ssl.methods.base import MONITOR_OFF
from projects.ssl.monitors import monitor_metrics

log = logging.getLogger(__name__)
BASELINES = tuple(BASELINE_NAMES)


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _fractions(text: str, name: str) -> list[float]:
    values = _split(text)
    check(bool(values), f"{name} is empty")
    out = []
    for value in values:
        try:
            out.append(float(value))
        except ValueError:
            out.append(-1.0)
        check(0 < out[-1] <= 1, f"{name} must be numbers in (0, 1], got {value!r}")
    return out


@dataclass
class Config:
    methods: str = param("simclr", f"comma-separated SSL methods ({', '.join(method_names())})")
    pretrain_datasets: str = param("cifar10", "comma-separated pretraining datasets")
    fractions: str = param("0.01,0.1,0.5,1.0", "comma-separated pretraining fractions")
    method_params: str = param(
        "", "method parameters as method.name=value, e.g. simclr.temperature=0.2,byol.momentum_base=0.996"
    )
    eval_dataset: str = param("cifar100", "labelled dataset of the linear probes and the supervised baseline")
    label_fractions: str = param(
        "0.01,0.1,1.0", "comma-separated shares of the labelled training images for probes and baselines"
    )
    baselines: str = param("imagenet,random,supervised", "comma-separated baselines")
    pretrain_epochs: int = param(100, "epochs per pretraining run")
    eval_epochs: int = param(100, "linear-probe epochs")
    supervised_epochs: int = param(100, "epochs of the from-scratch baseline")
    batch_size: int = param(256, "pretraining batch size")
    lr: float = param(1e-3, "pretraining learning rate")
    weights_path: str = param("", "local ImageNet weights for the imagenet baseline")
    eval_metric: str = param(
        "probe_top1", "per-epoch monitor of the pretraining runs", (*monitor_metrics(), MONITOR_OFF)
    )
    monitor_bank: int = param(5000, "labelled images the pretraining runs' monitor fits on")
    data_dir: str = param("data", "dataset folder")
    download: bool = param(True, "download missing datasets")
    seed: int = param(0, "seed of every child run")
    device: str = param("auto", "device", DEVICES)
    precision: str = param("auto", "precision", PRECISIONS)
    num_workers: int = param(2, "DataLoader workers")
    resume: bool = param(True, "resume interrupted child runs")

    def __post_init__(self) -> None:
        check(bool(_split(self.methods)), "methods is empty")
        for method in _split(self.methods):
            method_module(method)  # ConfigError naming the choices
        check(bool(_split(self.pretrain_datasets)), "pretrain_datasets is empty")
        _fractions(self.fractions, "fractions")
        _fractions(self.label_fractions, "label_fractions")
        for name in _split(self.baselines):
            check(name in BASELINES, f"unknown baseline {name!r}; choose from: {', '.join(BASELINES)}")
        per_method = self.per_method_params()
        unknown = sorted(set(per_method) - set(_split(self.methods)))
        check(not unknown, f"method_params name methods this study does not run: {unknown}")
        # Children validate everything else; building them now fails fast, before any compute.
        self.pretrain_configs()
        for fraction in self.label_fraction_list():
            self.probe_config("random", fraction)
            self.supervised_config(fraction)

    def label_fraction_list(self) -> list[float]:
        return _fractions(self.label_fractions, "label_fractions")

    def per_method_params(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for key, value in parse_overrides(self.method_params, "method_params").items():
            method, dot, name = key.partition(".")
            check(bool(dot and name), f"method_params keys look like method.name, got {key!r}")
            out.setdefault(method, {})[name] = value
        return out

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

    def pretrain_configs(self) -> list[tuple[str, Any]]:
        """(method, its Config) for every method x dataset x fraction."""
        per_method = self.per_method_params()
        return [
            (
                method,
                from_dict(
                    method_module(method).Config,
                    {
                        "dataset": dataset,
                        "fraction": fraction,
                        "epochs": self.pretrain_epochs,
                        "batch_size": self.batch_size,
                        "lr": self.lr,
                        "eval_metric": self.eval_metric,
                        "monitor_bank": self.monitor_bank,
                        "register": False,
                        **self.common(),
                        **per_method.get(method, {}),
                    },
                ),
            )
            for method in _split(self.methods)
            for dataset in _split(self.pretrain_datasets)
            for fraction in _fractions(self.fractions, "fractions")
        ]

    def probe_config(self, encoder: str, label_fraction: float) -> linear_eval.Config:
        return linear_eval.Config(
            encoder=encoder,
            dataset=self.eval_dataset,
            epochs=self.eval_epochs,
            label_fraction=label_fraction,
            weights_path=self.weights_path,
            **self.common(),
        )

    def supervised_config(self, label_fraction: float) -> supervised.Config:
        return supervised.Config(
            dataset=self.eval_dataset,
            epochs=self.supervised_epochs,
            label_fraction=label_fraction,
            register=False,
            **self.common(),
        )


def _baseline(cfg: Config, baseline: str, fraction: float) -> dict[str, Any] | None:
    """One baseline at one label fraction; None if it cannot run here (e.g. offline without weights)."""
    if baseline == "supervised":
        sup_cfg = cfg.supervised_config(fraction)
        return finished_child(sup_cfg, "supervised") or supervised.run(sup_cfg, nested=True)
    try:
        probe_cfg = cfg.probe_config(baseline, fraction)
        return finished_child(probe_cfg, "linear_eval") or linear_eval.run(probe_cfg, nested=True)
    except CheckpointError as exc:  # say so on the parent, keep going
        log.warning("baseline %s skipped: %s", baseline, exc)
        mlflow.set_tag(f"baseline.{baseline}", f"skipped: {exc}")
        return None


def run(cfg: Config) -> dict[str, float]:
    rows: list[dict[str, Any]] = []
    with tracked_run(cfg, "ssl_study", checkpointed=False):
        for method, child in cfg.pretrain_configs():
            pre = finished_child(child, method) or method_module(method).run(child, nested=True)
            checkpoint = str(checkpoint_dir(pre["run_id"]) / "last.pt")
            for fraction in cfg.label_fraction_list():
                probe_cfg = cfg.probe_config(checkpoint, fraction)
                # Named after the encoder's pretraining run, not its checkpoint path.
                encoder = f"{method}-{child.dataset} fraction={child.fraction:g}"
                with nested_run_name(f"linear_eval {encoder} label_fraction={fraction:g}"):
                    probe = finished_child(probe_cfg, "linear_eval") or linear_eval.run(
                        probe_cfg, nested=True
                    )
                rows.append(
                    {
                        "kind": "ssl",
                        "name": f"{method}-{child.dataset}-{child.fraction:g}",
                        "method": method,
                        "pretrain_dataset": child.dataset,
                        "fraction": child.fraction,
                        "pretrain_images": int(pre["pretrain_images"]),
                        "monitor": child.monitor_metric,
                        "monitor_value": pre.get(child.monitor_metric) if child.monitor_metric else None,
                        "label_fraction": fraction,
                        "test_top1": probe["test_top1"],
                        "test_top5": probe["test_top5"],
                    }
                )
        for baseline in _split(cfg.baselines):
            for fraction in cfg.label_fraction_list():
                result = _baseline(cfg, baseline, fraction)
                if result is not None:
                    rows.append(
                        {
                            "kind": baseline,
                            "name": BASELINE_NAMES[baseline],
                            "label_fraction": fraction,
                            "test_top1": result["test_top1"],
                            "test_top5": result["test_top5"],
                        }
                    )
        log_figure_svg(figure(rows), "ssl_study.svg")
        log_table(rows, "ssl_study_table.json")
        headline = {}
        ssl_rows = [r for r in rows if r["kind"] == "ssl"]
        for fraction in cfg.label_fraction_list():
            best = max(r["test_top1"] for r in ssl_rows if r["label_fraction"] == fraction)
            headline[f"labels_{fraction:g}/test_top1"] = best
        # The study's headline under the vocabulary's names: the best SSL encoder's probe with the most
        # labels, and the best monitor value of its pretraining runs (under the monitor's metric name).
        most = max(cfg.label_fraction_list())
        top = max((r for r in ssl_rows if r["label_fraction"] == most), key=lambda r: r["test_top1"])
        headline.update(test_top1=top["test_top1"], test_top5=top["test_top5"])
        monitored = [r for r in ssl_rows if r.get("monitor_value") is not None]
        if monitored:
            headline[monitored[0]["monitor"]] = max(r["monitor_value"] for r in monitored)
        mlflow.log_metrics(headline)
        return headline


if __name__ == "__main__":
    main(Config, run)
