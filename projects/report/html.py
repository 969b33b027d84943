"""Render the report's sections as one self-contained HTML page: inline CSS, inline SVG figures, images as
data URIs, no script and nothing fetched from the network; figures scale to the window's width."""

from __future__ import annotations

import base64
import math
from html import escape
from typing import Any

from projects.report.collect import RunRef, Section, Table

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 1rem 1.5rem 3rem; color: #1d1d1f; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.meta { color: #555; font-size: .9rem; }
.meta code, .runs code { font-size: .85rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .6rem; }
th { background: #f4f4f6; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; color: #666; font-size: .8rem; text-align: left; padding-top: .3rem; }
figure { margin: 1rem 0; }
figure svg { width: 100%; height: auto; max-width: 1100px; display: block; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { color: #666; font-size: .8rem; }
.frames { display: flex; flex-wrap: wrap; gap: 1rem; }
.note { color: #555; font-style: italic; }
.runs { font-size: .85rem; color: #444; }
"""


def fmt(value: Any) -> str:
    """A table cell: counts with thousands separators, accuracies and PSNR with 2 decimals, small
    values (SSIM, LPIPS, learning rates) with 4 significant digits, missing as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (abs(value) >= 1000 and float(value).is_integer()):
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.4g}"


def run_link(run: RunRef, ui: str | None) -> str:
    """A run's id, linked to its page in the MLflow UI when the tracking store is a server."""
    text = f"<code>{escape(run.run_id)}</code>"
    if ui:
        href = f"{ui}/#/experiments/{run.experiment_id}/runs/{run.run_id}"
        text = f'<a href="{escape(href)}">{text}</a>'
    name = f" {escape(run.name)}" if run.name else ""
    return f"{escape(run.role)}{name}: {text}"


def render_table(table: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = []
        for value in row:
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            cells.append(
                f'<td class="num">{fmt(value)}</td>' if numeric else f"<td>{escape(fmt(value))}</td>"
            )
        body.append(f"<tr>{''.join(cells)}</tr>")
    caption = f"<caption>{escape(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_section(section: Section, ui: str | None) -> str:
    parts = [f'<section id="{escape(section.key)}"><h2>{escape(section.title)}</h2>']
    if section.runs:
        items = "".join(f"<li>{run_link(r, ui)}</li>" for r in section.runs)
        parts.append(
            f'<details class="runs"><summary>from {len(section.runs)} run(s)</summary><ul>{items}</ul></details>'
        )
    parts += [f'<p class="note">{escape(note)}</p>' for note in section.notes]
    parts += [render_table(t) for t in section.tables]
    parts += [f"<figure>{svg}</figure>" for svg in section.figures]
    if section.images:
        frames = []
        for image in section.images:
            data = base64.b64encode(image.data).decode("ascii")
            frames.append(
                f'<figure><img src="data:{image.mime};base64,{data}" alt="{escape(image.caption)}">'
                f"<figcaption>{escape(image.caption)}</figcaption></figure>"
            )
        parts.append(f'<div class="frames">{"".join(frames)}</div>')
    parts.append("</section>")
    return "\n".join(parts)


def ui_base(tracking_uri: str) -> str | None:
    """The MLflow UI's address when the tracking URI is a server (its runs get links), else None."""
    return tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else None


def render(sections: list[Section], *, tracking_uri: str, built: str, experiments: str) -> str:
    """The whole page: a header (where the data came from, when) and one block per section."""
    ui = ui_base(tracking_uri)
    index = " · ".join(f'<a href="#{escape(s.key)}">{escape(s.title.split(":")[0])}</a>' for s in sections)
    header = (
        "<h1>CV experiments: cross-study report</h1>"
        f'<p class="meta">Built {escape(built)} from <code>{escape(tracking_uri)}</code>'
        f" ({escape(experiments)}). Each section names the MLflow runs it was built from.</p>"
        f'<p class="meta">{index}</p>'
    )
    body = "\n".join(render_section(s, ui) for s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>CV experiments report</title><style>{CSS}</style></head>\n"
        f"<body>{header}\n{body}\n</body></html>\n"
    )
