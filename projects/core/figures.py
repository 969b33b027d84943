"""Figures as small, self-contained SVG: one file per figure, readable at any width.

SVG rather than plotly HTML: a plotly HTML file embeds plotly.js (4.6 MB) and lays its legend out for one
width, which a narrower viewer cuts off. An SVG from matplotlib is a few tens of kB, opens as an image in
MLflow's artifact viewer and in any browser without network, and scales as a whole: the legend sits below
the axes, inside the saved picture (``bbox_inches="tight"``), so no width cuts it. Text stays text
(``svg.fonttype = none``): small, searchable, and its labels can be checked by tests.

Figures are drawn on the Agg backend: the entry points are headless processes and a figure is a file.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.artist import Artist  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

# What every figure is saved with: text as <text> elements (not glyph outlines), no timestamp.
SVG_RC = {"svg.fonttype": "none"}
SVG_METADATA = {"Date": None}
# Approximate width of one legend character in inches at the default font size; used to pick columns.
_CHAR_IN = 0.085
_ENTRY_EXTRA_IN = 0.55  # the line sample and the padding around each legend entry


def new_figure(width: float, height: float, **kwargs: Any) -> Figure:
    """A figure outside pyplot's registry (nothing to close, no GUI backend), with constrained layout."""
    return Figure(figsize=(width, height), layout="constrained", **kwargs)


def legend_columns(labels: Sequence[str], width_in: float, max_columns: int = 6) -> int:
    """How many legend columns fit in ``width_in`` inches for these labels (at least 1)."""
    if not labels:
        return 1
    longest = max(len(label) for label in labels)
    fit = int(width_in // (longest * _CHAR_IN + _ENTRY_EXTRA_IN))
    return max(1, min(len(labels), max_columns, fit))


def legend_below(
    fig: Figure,
    handles: Sequence[Artist] | None = None,
    labels: Sequence[str] | None = None,
    *,
    title: str | None = None,
    max_columns: int = 6,
) -> None:
    """One legend for the whole figure, centred below every axes, replacing the axes' own legends.

    Without ``handles`` it gathers the labelled artists of all axes (first occurrence of each label).
    The legend hangs under the figure's bottom edge; saving with ``bbox_inches="tight"`` (as
    :func:`svg_text` does) grows the picture to include it, so it never overlaps a plot nor is cut off.
    """
    if handles is None:
        seen: dict[str, Artist] = {}
        for ax in fig.axes:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                if not label.startswith("_"):
                    seen.setdefault(label, handle)
        labels, handles = list(seen), list(seen.values())
    elif labels is None:
        labels = [h.get_label() for h in handles]
    for ax in fig.axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if not handles:
        return
    ncol = legend_columns(labels, fig.get_figwidth(), max_columns)
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=fig.transFigure,
        ncol=ncol,
        frameon=False,
        title=title,
    )


def svg_text(fig: Figure, *, close: bool = True) -> str:
    """The figure as an SVG document (tight bounding box: the legend below the axes included)."""
    buffer = io.StringIO()
    with matplotlib.rc_context(SVG_RC):
        fig.savefig(buffer, format="svg", bbox_inches="tight", pad_inches=0.1, metadata=SVG_METADATA)
    if close:
        plt.close(fig)  # a pyplot-made figure (e.g. Optuna's) leaves the registry; others: no-op
    return buffer.getvalue()


def svg_inline(fig: Figure, *, close: bool = True) -> str:
    """The figure as an ``<svg>`` element to embed in HTML: no XML prolog, scales to its container's
    width (``width="100%"``, height from the viewBox) instead of a fixed size in points."""
    text = svg_text(fig, close=close)
    start = text.index("<svg")
    element = text[start:]
    head_end = element.index(">")
    head = element[:head_end]
    head = re.sub(r'\swidth="[^"]*"', ' width="100%"', head, count=1)
    head = re.sub(r'\sheight="[^"]*"', "", head, count=1)
    return head + element[head_end:]


def log_figure_svg(fig: Figure, artifact_file: str) -> None:
    """Log the figure as an SVG artifact of the active run (``artifact_file`` ends in ``.svg``); the
    figure is closed afterwards."""
    import mlflow

    if not artifact_file.endswith(".svg"):
        raise ValueError(f"artifact_file must end in .svg, got {artifact_file!r}")
    mlflow.log_text(svg_text(fig), artifact_file)


def compact_number(value: float) -> str:
    """``50000`` -> ``50k``, ``1281167`` -> ``1.28M``: short tick labels for counts."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def count_ticks(ax: Axes, values: Sequence[float]) -> None:
    """X ticks at exactly these counts (e.g. the pretraining set sizes), labelled compactly, no minor
    labels: a log axis over a few sizes otherwise prints overlapping ``3x10^4 4x10^4``."""
    ticks = sorted(set(values))
    if not ticks:
        return
    ax.set_xticks(ticks, [compact_number(v) for v in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def decimate(points: Sequence[tuple[int, float]], limit: int = 500) -> list[tuple[int, float]]:
    """At most ``limit`` evenly spaced points of a curve, first and last kept: a per-step curve of a long
    run (tens of thousands of points) drawn at the same width, in a file a hundred times smaller."""
    points = list(points)
    if len(points) <= limit:
        return points
    stride = math.ceil(len(points) / limit)
    kept = points[::stride]
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept
