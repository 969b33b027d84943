"""The ``vit_vs_cnn`` report: the children's curves read back from MLflow, one overlay figure, one table."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from projects.core.figures import decimate, legend_below, new_figure

# Per-epoch metrics the loop logs (step = epochs completed).
CURVES = ("train_loss", "val_loss", "val_top1", "val_top5", "train_images_per_sec")
# Per-optimizer-step metrics the figure draws (step = optimizer step).
STEP_CURVES = ("lr",)
History = dict[str, list[tuple[int, float]]]  # metric -> [(step, value), ...]
# (panel, metric, line style) for each line of one model; the panel titles say which style is which.
_PANELS = (
    (0, "val_top1", "-"),
    (0, "val_top5", ":"),
    (1, "val_loss", "-"),
    (1, "train_loss", ":"),
    (2, "lr", "-"),
    (3, "train_images_per_sec", "-"),
)
_TITLES = (
    ("val top-1 (solid) / top-5 (dotted)", "epoch", "accuracy (%)"),
    ("loss: val (solid) / train (dotted)", "epoch", "cross-entropy"),
    ("learning rate", "optimizer step", "lr"),
    ("training throughput", "epoch", "images/s"),
)
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def child_runs(parent_run_id: str) -> list[Run]:
    """The parent's nested runs, oldest first."""
    client = MlflowClient()
    parent = client.get_run(parent_run_id)
    return client.search_runs(
        [parent.info.experiment_id],
        f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
        order_by=["attributes.start_time ASC"],
    )


def metric_histories(run_id: str, keys: tuple[str, ...] = CURVES + STEP_CURVES) -> History:
    """Each metric's points ``(step, value)`` in step order, as MLflow holds them."""
    client = MlflowClient()
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key)) for key in keys}


def comparison_figure(histories: dict[str, History], title: str = "ViT vs CNN") -> Figure:
    """The models' curves overlaid in four panels (accuracy, loss, learning rate per optimizer step,
    throughput): one colour per model, named in the legend below the panels."""
    fig = new_figure(11, 7.5)
    axes = fig.subplots(2, 2).ravel()
    handles = []
    for i, (label, history) in enumerate(histories.items()):
        color = _COLORS[i % len(_COLORS)]
        for panel, key, style in _PANELS:
            points = decimate(history.get(key, []))
            (line,) = axes[panel].plot(
                [step for step, _ in points],
                [value for _, value in points],
                linestyle=style,
                color=color,
                marker="o" if key != "lr" and len(points) <= 30 else None,
                markersize=3,
                label=label,
            )
            if panel == 0 and style == "-":
                handles.append(line)
    for ax, (panel_title, xlabel, ylabel) in zip(axes, _TITLES, strict=True):
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[2].ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    fig.suptitle(title)
    legend_below(fig, handles, [h.get_label() for h in handles])
    return fig


def summary_row(run: Run, history: History) -> dict[str, Any]:
    """Parameters, best/final top-1, wall time and throughput of one child run."""
    params, metrics = run.data.params, run.data.metrics
    val_top1 = [v for _, v in history.get("val_top1", [])]
    speed = [v for _, v in history.get("train_images_per_sec", [])]
    end = run.info.end_time or run.info.start_time
    return {
        "model": params.get("model"),
        "num_parameters": int(params.get("num_parameters", 0)),
        "lr": float(params["lr"]),
        "weight_decay": float(params["weight_decay"]),
        "epochs": len(val_top1),
        "best_val_top1": metrics.get("best_val_top1"),
        "final_val_top1": val_top1[-1] if val_top1 else None,
        "test_top1": metrics.get("test_top1"),
        "test_top5": metrics.get("test_top5"),
        "train_time_s": metrics.get("train_time_s"),
        "wall_time_s": (end - run.info.start_time) / 1000.0,
        "train_images_per_sec": sum(speed) / len(speed) if speed else None,
        "run_id": run.info.run_id,
    }
