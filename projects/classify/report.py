"""The ``vit_vs_cnn`` report: the children's curves read back from MLflow, one overlay figure, one table."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from plotly.subplots import make_subplots

# Per-epoch metrics the loop logs (step = epoch).
CURVES = ("train_loss", "val_loss", "val_top1", "val_top5", "lr", "images_per_sec")
History = dict[str, list[tuple[int, float]]]  # metric -> [(epoch, value), ...]
# (subplot row, col, metric, line dash) for each trace of one model.
_PANELS = (
    (1, 1, "val_top1", "solid"),
    (1, 1, "val_top5", "dot"),
    (1, 2, "train_loss", "dot"),
    (1, 2, "val_loss", "solid"),
    (2, 1, "lr", "solid"),
    (2, 2, "images_per_sec", "solid"),
)
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def child_runs(parent_run_id: str) -> list[Run]:
    """The parent's nested runs, oldest first."""
    client = MlflowClient()
    parent = client.get_run(parent_run_id)
    return client.search_runs(
        [parent.info.experiment_id],
        f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
        order_by=["attributes.start_time ASC"],
    )


def metric_histories(run_id: str, keys: tuple[str, ...] = CURVES) -> History:
    client = MlflowClient()
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key)) for key in keys}


def comparison_figure(histories: dict[str, History], title: str = "ViT vs CNN") -> go.Figure:
    """Both models' curves overlaid: one colour per model, solid = val top-1 / val loss."""
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=(
            "val top-1 (solid) / top-5 (dotted), %",
            "loss: val (solid) / train (dotted)",
            "learning rate",
            "training images/s",
        ),
    )
    for i, (label, history) in enumerate(histories.items()):
        color = _COLORS[i % len(_COLORS)]
        for row, col, key, dash in _PANELS:
            points = history.get(key, [])
            fig.add_trace(
                go.Scatter(
                    x=[step for step, _ in points],
                    y=[value for _, value in points],
                    mode="lines+markers",
                    name=f"{label} {key}",
                    legendgroup=label,
                    line={"color": color, "dash": dash},
                ),
                row=row,
                col=col,
            )
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title=title, height=800, width=1200)
    return fig


def summary_row(run: Run, history: History) -> dict[str, Any]:
    """Parameters, best/final top-1, wall time and throughput of one child run."""
    params, metrics = run.data.params, run.data.metrics
    val_top1 = [v for _, v in history.get("val_top1", [])]
    speed = [v for _, v in history.get("images_per_sec", [])]
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
        "images_per_sec": sum(speed) / len(speed) if speed else None,
        "run_id": run.info.run_id,
    }
