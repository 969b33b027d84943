"""``report``: one self-contained HTML page of every study's newest results, rebuilt from MLflow.

    mlflow run . -e report --env-manager local
    python -m projects.report.run --output report.html

Sections: SSL (linear-probe top-1 vs pretraining data size, baselines as lines), ViT vs CNN (table and
curves), NeRF (metrics and one frame per scene), Tune (the best trial of each study). The page is written
to ``output`` and logged as artifact ``report.html`` of the report's own run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from projects.core.config import check, param
from projects.core.entry import main
from projects.core.preflight import check_writable
from projects.core.tracking import configure_tracking, redact, tracked_run
from projects.report.collect import collect, experiment_ids
from projects.report.html import render

log = logging.getLogger(__name__)
ARTIFACT = "report.html"


@dataclass
class Config:
    """Rebuild the cross-study HTML report from what MLflow holds."""

    output: str = param("report.html", "path of the HTML file to write (its folder must exist)")
    experiments: str = param(
        "", "comma-separated experiment names to read; empty = all (runs are found by entry point)"
    )

    def __post_init__(self) -> None:
        path = Path(self.output).expanduser()
        check(bool(self.output.strip()), "output must be a file path, got an empty string")
        check(
            not path.is_dir(), f"output {path} is a folder; give a file path such as {path / 'report.html'}"
        )
        check(path.parent.is_dir(), f"output folder {path.parent} does not exist")
        check_writable(path.parent, "output folder", "choose another output path")

    def experiment_names(self) -> list[str]:
        return [name.strip() for name in self.experiments.split(",") if name.strip()]


def run(cfg: Config) -> dict[str, Any]:
    """Write the report; returns where it went and which runs each section came from."""
    uri = redact(configure_tracking())
    client = MlflowClient()
    ids = experiment_ids(client, cfg.experiment_names())  # an unknown experiment: exit 2, no run
    with tracked_run(cfg, "report", run_name="report", checkpointed=False):
        sections = collect(client, ids)
        built = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        scope = f"experiments {cfg.experiments}" if cfg.experiment_names() else "all experiments"
        page = render(sections, tracking_uri=uri, built=built, experiments=scope)
        Path(cfg.output).expanduser().write_text(page, encoding="utf-8")
        mlflow.log_text(page, ARTIFACT)
        summary = "; ".join(
            f"{s.title.split(':')[0]}: {len(s.runs)} run(s)" if s.runs else f"{s.title.split(':')[0]}: none"
            for s in sections
        )
        mlflow.set_tag(
            "mlflow.note.content",
            f"Cross-study report built {built} from {uri} ({scope}); open artifact `{ARTIFACT}`. "
            f"Sections: {summary}.",
        )
        log.info("report: %s (%.0f kB); %s", cfg.output, len(page.encode()) / 1024, summary)
    return {"output": cfg.output, "sections": {s.key: [r.run_id for r in s.runs] for s in sections}}


if __name__ == "__main__":
    main(Config, run)
