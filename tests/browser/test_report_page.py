"""The cross-study HTML report (entry point ``report``) in a real browser: every section is there, every
figure and picture is drawn at a non-zero size with its legend inside, at a wide and a narrow window, and
the copy MLflow keeps as the report run's artifact renders in MLflow's artifact viewer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.browser.conftest import ENTRY, Tracking, inside

SECTIONS = ("ssl", "vit_vs_cnn", "nerf", "tune")
NARROW = 700  # half a laptop screen


@dataclass
class Report:
    path: Path
    run_id: str
    experiment_id: str


@pytest.fixture
def report(tracking: Tracking, run_main, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Report:
    """``python -m projects.report.run --output PATH`` (in-process) on the folder's store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.store.uri)
    out = tmp_path / "report.html"
    code, line = run_main("projects.report.run", ["--output", str(out)])
    assert code == 0, line
    client = MlflowClient(tracking.store.uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    newest = client.search_runs(experiments, f"tags.`{ENTRY}` = 'report'", order_by=["start_time DESC"])[0]
    return Report(out, newest.info.run_id, newest.info.experiment_id)


def assert_figures_fit(root, width: int) -> int:
    """Every figure under ``root`` has a size and fits ``width``; each legend lies inside its figure.
    Returns how many figures there are."""
    figures = root.locator("section figure svg").all()
    for svg in figures:
        frame = svg.bounding_box()
        assert frame and frame["width"] > 100 and frame["height"] > 50, frame
        assert frame["x"] + frame["width"] <= width + 1, (frame, width)
        for legend in svg.locator("g[id^=legend]").all():
            box = legend.bounding_box()
            assert box and box["width"] > 0 and inside(box, frame), (box, frame)
    return len(figures)


def assert_pictures_drawn(root) -> None:
    pictures = root.locator("section img").all()
    assert pictures, "no picture (the NeRF evaluation image)"
    for picture in pictures:
        assert picture.evaluate("img => img.complete && img.naturalWidth > 0"), picture.get_attribute("alt")
        box = picture.bounding_box()
        assert box and box["width"] > 50 and box["height"] > 10, box


def test_report_page_shows_every_section_with_its_figures(page, report: Report) -> None:
    page.goto(report.path.as_uri())
    page.get_by_role("heading", name="CV experiments: cross-study report").wait_for()
    for key in SECTIONS:
        assert page.locator(f"section#{key} h2").is_visible(), key
    assert "61.50" in page.locator("section#vit_vs_cnn").inner_text()  # resnet18's best_val_top1
    assert "27.48" in page.locator("section#nerf").inner_text()  # the NeRF run's test_psnr
    assert assert_figures_fit(page, page.viewport_size["width"]) >= 2  # the SSL and ViT-vs-CNN figures
    assert_pictures_drawn(page)
    # A narrow window: the figures shrink with it, their legends still inside.
    page.set_viewport_size({"width": NARROW, "height": 900})
    assert assert_figures_fit(page, NARROW) >= 2


def test_report_artifact_renders_in_the_mlflow_artifact_viewer(
    page, tracking: Tracking, report: Report
) -> None:
    page.goto(
        f"{tracking.url}/#/experiments/{report.experiment_id}/runs/{report.run_id}"
        "/artifacts/report.html?workflowType=machine_learning"
    )
    frame = page.frame_locator("iframe").first
    frame.get_by_role("heading", name="CV experiments: cross-study report").wait_for()
    for key in SECTIONS:
        assert frame.locator(f"section#{key} h2").is_visible(), key
    viewer = page.locator("iframe").first.bounding_box()
    assert viewer and viewer["width"] > 300 and viewer["height"] > 300, viewer
    assert assert_figures_fit(frame, page.viewport_size["width"]) >= 2
    assert_pictures_drawn(frame)
