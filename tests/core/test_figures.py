"""The studies' figures as SVG: small, legends naming every line and lying inside the picture."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import mlflow
import optuna
import pytest

from projects.classify.report import comparison_figure
from projects.core.figures import decimate, log_figure_svg, svg_inline, svg_text
from projects.ssl.figures import figure as ssl_figure
from projects.tune.plots import log_study_plots
from tests.study_tables import ssl_study_rows
from tests.svg_checks import SVG, legend_texts


def history(offset: float, epochs: int = 100, steps_per_epoch: int = 390) -> dict:
    """A 100-epoch run's curves; lr per optimizer step (39,000 points)."""
    per_epoch = range(1, epochs + 1)
    return {
        "val_top1": [(e, offset + 50 * (1 - math.exp(-e / 20))) for e in per_epoch],
        "val_top5": [(e, offset + 75 * (1 - math.exp(-e / 20))) for e in per_epoch],
        "val_loss": [(e, 1 + 4 * math.exp(-e / 30)) for e in per_epoch],
        "train_loss": [(e, 0.5 + 4 * math.exp(-e / 25)) for e in per_epoch],
        "train_images_per_sec": [(e, 5000.0 + offset) for e in per_epoch],
        "lr": [(s, 5e-4 * (1 + math.cos(math.pi * s / (epochs * steps_per_epoch)))) for s in range(39_000)],
    }


def test_comparison_figure_names_both_models_in_a_legend_inside_a_small_svg() -> None:
    svg = svg_text(comparison_figure({"resnet18": history(10), "vit_d192_l25": history(5)}, "ViT vs CNN"))
    assert legend_texts(svg) == ["resnet18", "vit_d192_l25"]
    root = ET.fromstring(svg)
    texts = {"".join(t.itertext()) for t in root.iter(f"{SVG}text")}
    assert {"optimizer step", "epoch", "images/s", "accuracy (%)"} <= texts
    # 4 panels x 2 models: accuracy (2 lines), loss (2), lr (1), throughput (1) per model
    lines = [g for g in root.iter(f"{SVG}g") if g.attrib.get("id", "").startswith("line2d")]
    drawn = [g for g in lines if any(len(p.attrib.get("d", "")) > 200 for p in g.iter(f"{SVG}path"))]
    assert len(drawn) >= 12


def ssl_rows() -> list[dict]:
    return ssl_study_rows(50.0, {"imagenet": 33.0, "random": 12.0})


def test_ssl_figure_has_a_line_per_method_and_the_baselines_in_its_legend() -> None:
    svg = svg_text(ssl_figure(ssl_rows()))
    assert sorted(legend_texts(svg)) == [
        "byol on cifar10",
        "imagenet features",
        "random features",
        "simclr on cifar10",
    ]
    texts = {"".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG}text")}
    assert {"1% labels", "100% labels", "5k", "50k"} <= texts


def test_inline_svg_scales_with_its_container() -> None:
    inline = svg_inline(ssl_figure(ssl_rows()))
    assert inline.startswith("<svg") and "<?xml" not in inline
    root = ET.fromstring(inline)
    assert root.attrib["width"] == "100%" and "height" not in root.attrib and "viewBox" in root.attrib


def test_log_figure_svg_logs_an_svg_artifact() -> None:
    with mlflow.start_run() as run:
        log_figure_svg(ssl_figure(ssl_rows()), "figures/ssl.svg")
        with pytest.raises(ValueError, match="must end in .svg"):
            log_figure_svg(ssl_figure(ssl_rows()), "figures/ssl.html")
    path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="figures/ssl.svg")
    legend_texts(open(path).read())


def test_decimate_keeps_the_ends_and_at_most_the_limit() -> None:
    points = [(i, float(i)) for i in range(39_001)]
    kept = decimate(points, 500)
    assert len(kept) <= 501 and kept[0] == points[0] and kept[-1] == points[-1]
    assert decimate(points[:10], 500) == points[:10]


def test_study_plots_are_svg_with_their_legends_inside() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    study.set_metric_names(["val_top1"])

    def objective(trial: optuna.Trial) -> float:
        x, lr = trial.suggest_float("x", 0, 1), trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        for epoch in range(1, 4):
            trial.report(x * epoch + lr, epoch)
        return x + lr

    study.optimize(objective, n_trials=5)
    with mlflow.start_run() as run:
        assert log_study_plots(study) == ["optimization_history", "intermediate_values", "param_importances"]
    client = mlflow.MlflowClient()
    files = {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
    assert files == {
        f"plots/{n}.svg" for n in ("optimization_history", "intermediate_values", "param_importances")
    }
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="plots")
    history = open(f"{local}/optimization_history.svg").read()
    assert set(legend_texts(history)) == {"val_top1", "Best Value"}
    assert legend_texts(open(f"{local}/intermediate_values.svg").read()) == [f"Trial{i}" for i in range(5)]
