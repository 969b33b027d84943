"""The MLflow UI in a real browser, as a person checks a study: the runs table in "Model training" mode with
distinct run names and the headline metric, the registry's champion, and an SVG figure in the artifact
viewer with its legend inside the picture."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from tests.browser.conftest import Tracking, inside

# Only GenAI mode's experiment page has these in its side bar; "Model training" mode shows Runs / Models.
GENAI_ONLY_NAV = ("Overview", "Evaluation runs", "Judges")


def experiment_link(tracking: Tracking, name: str) -> str:
    """The link our README and run descriptions give: the experiment in MLflow's "Model training" view."""
    return f"{tracking.url}/#/experiments/{tracking.store.experiments[name]}?workflowType=machine_learning"


def open_runs_table(page, url: str, runs: int) -> None:
    page.goto(url)
    page.get_by_text(re.compile(rf"^{runs} matching runs?$")).wait_for()


def show_metric_column(page, metric: str) -> None:
    """Tick the metric in the table's "Columns" menu, as a person does (MLflow 3 shows no metric column
    until one is picked)."""
    # The runs table's column chooser: MLflow 3.18 gives a second menu button the same name and test id.
    page.locator('[data-testid="column-selection-dropdown"][aria-haspopup="dialog"]').click()
    page.get_by_text(metric, exact=True).click()
    page.keyboard.press("Escape")
    page.locator(f'[role=columnheader][col-id="{metric_column(metric)}"]').wait_for()


def metric_column(metric: str) -> str:
    return f"metrics.`{metric}`"


def widen_column(page, col_id: str, by: int) -> None:
    """Drag the column's right edge ``by`` pixels to the right, as a person widens a column."""
    header = page.locator(f'[role=columnheader][col-id="{col_id}"]')
    before = header.bounding_box()["width"]
    handle = header.locator(".ag-header-cell-resize")
    handle.hover()
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x + by * step / 10, y)
    page.mouse.up()
    assert header.bounding_box()["width"] > before + by / 2, "the column did not widen"


def by_row(page, col_id: str) -> dict[str, object]:
    """The table's cells of one column by row id (the name column and the others are separate grids)."""
    return {
        row.get_attribute("row-id"): row.locator(f'[role=gridcell][col-id="{col_id}"]')
        for row in page.locator("[role=row][row-id]").all()
        if row.locator(f'[role=gridcell][col-id="{col_id}"]').count()
    }


def test_experiment_link_opens_model_training_mode_with_the_runs_table(page, tracking: Tracking) -> None:
    open_runs_table(page, experiment_link(tracking, "vit-vs-cnn"), runs=3)  # children fold under the parent
    for item in GENAI_ONLY_NAV:
        assert not page.get_by_text(item, exact=True).is_visible(), f"the GenAI view ({item}), not the runs"
    assert page.get_by_role("link", name="vit_vs_cnn-cifar100", exact=True).is_visible()
    # The experiment's description heads the page.
    assert page.get_by_text("Parameter-matched ViT vs ResNet-18 (browser tests)").is_visible()


def test_runs_table_lists_distinct_names_with_their_probe_top1(page, tracking: Tracking) -> None:
    expected = tracking.store.probe_top1  # SimCLR run name -> its last probe_top1
    open_runs_table(page, experiment_link(tracking, "ssl"), runs=len(expected) + 1)  # + the ssl_study run
    show_metric_column(page, "probe_top1")
    header = page.locator(f'[role=columnheader][col-id="{metric_column("probe_top1")}"]')
    box = header.bounding_box()
    assert box and box["width"] > 0 and box["x"] + box["width"] <= page.viewport_size["width"], box
    assert header.inner_text().strip() == "probe_top1"

    # MLflow's name column shows ~22 characters, the part our names share: a person widens it.
    widen_column(page, "attributes.`Run Name`", by=200)
    names = {}
    for row, cell in by_row(page, "attributes.`Run Name`").items():
        text = cell.get_by_role("link").locator("span").first
        assert text.evaluate("e => e.scrollWidth <= e.clientWidth"), f"{text.text_content()!r} is cut off"
        names[row] = text.inner_text()
    assert len(set(names.values())) == len(names) == len(expected) + 1, names
    values = {
        names[row]: cell.inner_text() for row, cell in by_row(page, metric_column("probe_top1")).items()
    }
    assert {name: values.get(name) for name in expected} == {name: f"{v:g}" for name, v in expected.items()}


def test_registry_shows_the_champion_with_its_descriptions(page, tracking: Tracking) -> None:
    page.goto(f"{tracking.url}/#/models")
    row = page.get_by_role("row").filter(has_text="simclr-resnet18")
    row.wait_for()
    assert re.search(r"@\s*champion\s*:\s*Version 2", row.inner_text()), row.inner_text()

    page.get_by_role("link", name="simclr-resnet18", exact=True).click()
    page.get_by_text("SimCLR ResNet-18 encoder; alias champion = best probe_top1").wait_for()
    v2 = page.get_by_role("row").filter(has=page.get_by_role("link", name="Version 2", exact=True))
    v1 = page.get_by_role("row").filter(has=page.get_by_role("link", name="Version 1", exact=True))
    assert "champion" in v2.inner_text() and "champion" not in v1.inner_text()

    # The champion's own page: its description in full and the run it came from.
    v2.get_by_role("link", name="Version 2", exact=True).click()
    best = max(tracking.store.probe_top1, key=tracking.store.probe_top1.get)
    page.get_by_text(f"{best}: probe_top1 = {tracking.store.probe_top1[best]}", exact=True).wait_for()
    assert page.get_by_role("link", name=best, exact=True).is_visible()
    assert page.get_by_text(re.compile(r"^@\s*champion$")).is_visible()


@pytest.mark.parametrize(
    ("experiment", "run", "artifact", "legend"),
    [
        ("vit-vs-cnn", "vit_vs_cnn", "vit_vs_cnn.svg", ["resnet18", "vit_d192_l25"]),
        ("tune-toy", "tune", "plots/intermediate_values.svg", [f"Trial{i}" for i in range(3)]),
    ],
)
def test_svg_figure_renders_in_the_artifact_viewer_with_its_legend_inside(
    page, tracking: Tracking, experiment: str, run: str, artifact: str, legend: list[str]
) -> None:
    store = tracking.store
    page.goto(
        f"{tracking.url}/#/experiments/{store.experiments[experiment]}/runs/{store.runs[run]}"
        f"/artifacts/{artifact}?workflowType=machine_learning"
    )
    image = page.locator('img[src^="blob:"]').first
    image.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    frame = image.bounding_box()
    assert frame and frame["width"] > 200 and frame["height"] > 100, frame
    # Something is drawn: many colours in the picture, not a blank or broken-image box.
    shot = Image.open(io.BytesIO(page.screenshot(clip=frame)))
    assert len(shot.convert("RGB").getcolors(maxcolors=1 << 20) or ()) > 20

    # The same bytes laid out by the browser as inline SVG over the image, at the image's size: where its
    # legend lands is where the image draws it (a legend beyond the SVG's frame would be cut off).
    page.evaluate(OVERLAY_SVG_COPY, [image.element_handle(), frame])
    legends = page.locator("#svg-copy svg g[id^=legend]").all()
    assert legends, "the figure has no legend"
    labels = []
    for group in legends:
        box = group.bounding_box()
        assert box and box["width"] > 0 and box["height"] > 0
        assert inside(box, frame), f"legend {box} outside the picture {frame}"
        labels += [text.strip() for text in group.locator("text").all_text_contents()]
    assert [label for label in legend if label in labels] == legend, labels
    # The picture fits the window: nothing of it (its legend included) beyond the right edge.
    assert frame["x"] + frame["width"] <= page.viewport_size["width"], frame


OVERLAY_SVG_COPY = """async ([img, box]) => {
    const text = await (await fetch(img.src)).text();
    const div = document.createElement('div');
    div.id = 'svg-copy';
    div.style.cssText = `position:absolute;left:${box.x + window.scrollX}px;top:${box.y + window.scrollY}px;`
        + `width:${box.width}px;height:${box.height}px;opacity:0;pointer-events:none`;
    div.innerHTML = text.slice(text.indexOf('<svg'));
    const svg = div.querySelector('svg');
    svg.setAttribute('width', '100%');
    svg.setAttribute('height', '100%');
    document.body.appendChild(div);
}"""
