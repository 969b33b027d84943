"""The ``ssl_study`` figure: linear-probe top-1 vs pretraining data size, baselines as lines.

Kept apart from :mod:`projects.ssl.study` (which imports every method and trainer) so that the report
(:mod:`projects.report`) draws the same figure from a study's table without importing the training code.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from projects.core.figures import count_ticks, legend_below, new_figure

# Each baseline's name in the study's table, figure legend and the report.
BASELINE_NAMES = {
    "imagenet": "imagenet features",
    "random": "random features",
    "supervised": "supervised from scratch",
}


def _labels(fraction: float) -> str:
    return f"{100 * fraction:g}% labels"


def figure(rows: list[dict[str, Any]]) -> Figure:
    """Probe top-1 vs pretraining images, one panel per label fraction: a line per method and pretraining
    dataset (one colour each), the baselines as dashed horizontal lines; one legend below the panels."""
    fractions = sorted({float(r["label_fraction"]) for r in rows})
    fig = new_figure(min(4.8 * max(len(fractions), 1) + 0.8, 15), 4.6)
    axes = fig.subplots(1, max(len(fractions), 1), squeeze=False)[0]
    ssl = [r for r in rows if r["kind"] == "ssl"]
    lines = sorted({(r["method"], r["pretrain_dataset"]) for r in ssl})
    baselines = sorted({r["name"] for r in rows if r["kind"] != "ssl"})
    colors = {key: f"C{i % 10}" for i, key in enumerate([*lines, *baselines])}
    for ax, fraction in zip(axes, fractions, strict=False):
        for method, dataset in lines:
            points = sorted(
                (
                    r
                    for r in ssl
                    if (r["method"], r["pretrain_dataset"]) == (method, dataset)
                    and float(r["label_fraction"]) == fraction
                ),
                key=lambda r: r["pretrain_images"],
            )
            ax.plot(
                [r["pretrain_images"] for r in points],
                [r["test_top1"] for r in points],
                marker="o",
                color=colors[(method, dataset)],
                label=f"{method} on {dataset}",
            )
        for r in rows:
            if r["kind"] != "ssl" and float(r["label_fraction"]) == fraction:
                ax.axhline(r["test_top1"], linestyle="--", color=colors[r["name"]], label=r["name"])
        if ssl:
            ax.set_xscale("log")
            count_ticks(ax, [r["pretrain_images"] for r in ssl])
        ax.set_title(_labels(fraction), fontsize=10)
        ax.set_xlabel("pretraining images")
        ax.set_ylabel("linear-probe test top-1 (%)")
        ax.grid(alpha=0.3)
    fig.suptitle("Test top-1 vs pretraining data size")
    legend_below(fig)
    return fig
