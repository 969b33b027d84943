"""Checks of an SVG figure as a reader sees it: which names its legend shows, and that the legend lies
inside the picture (so no viewer width cuts it off)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"
MAX_BYTES = 300_000


def _font_px(style: str) -> float:
    match = re.search(r"font-size:\s*([\d.]+)px", style or "")
    return float(match.group(1)) if match else 10.0


def legend_texts(svg: str) -> list[str]:
    """The legend's labels, after checking that each lies inside the SVG's viewBox (text width estimated
    generously at 0.62 em per character) and that the figure is small."""
    assert len(svg.encode()) < MAX_BYTES, f"figure is {len(svg.encode())} bytes"
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    legends = [g for g in root.iter(f"{SVG}g") if g.attrib.get("id", "").startswith("legend")]
    assert legends, "the figure has no legend"
    labels = []
    for legend in legends:
        for text in legend.iter(f"{SVG}text"):
            label = "".join(text.itertext()).strip()
            x, y = float(text.attrib["x"]), float(text.attrib["y"])
            size = _font_px(text.attrib.get("style", ""))
            assert 0 <= x and x + 0.62 * size * len(label) <= width, (label, x, width)
            assert size <= y <= height, (label, y, height)
            labels.append(label)
    return labels
