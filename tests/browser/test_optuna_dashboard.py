"""optuna-dashboard in a real browser on the journal of a real ``tune``: the study is listed, and its
history plot labels the objective with the metric the study file names (``study.set_metric_names``)
instead of Optuna's anonymous "Objective Value"."""

from __future__ import annotations

import json
import urllib.request

from tests.browser.conftest import TOY_METRIC, TOY_TRIALS, Tracking


def test_dashboard_shows_the_study_with_its_objective_metric(
    page, optuna_dashboard: str, tracking: Tracking
) -> None:
    name = tracking.store.study_name
    with urllib.request.urlopen(f"{optuna_dashboard}/api/studies", timeout=10) as response:
        (study,) = [s for s in json.loads(response.read())["study_summaries"] if s["study_name"] == name]
    page.goto(f"{optuna_dashboard}/dashboard")
    page.get_by_text(f"{study['study_id']}. {name}", exact=True).wait_for()

    page.goto(f"{optuna_dashboard}/dashboard/studies/{study['study_id']}")
    page.get_by_text(f"{name} (id={study['study_id']})").wait_for()
    history = page.locator(".MuiCard-root").filter(has_text="History").locator(".ytitle")
    history.wait_for()
    assert history.text_content() == TOY_METRIC
    box = history.bounding_box()
    assert box and box["width"] > 0 and box["height"] > 0
    # Every trial of the tune run is drawn (the intermediate values' legend names each).
    for number in range(TOY_TRIALS):
        assert page.locator(".legendtext", has_text=f"trial #{number}").count() == 1, number
