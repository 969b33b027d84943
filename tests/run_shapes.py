"""Runs written straight into a store in the shape an entry point leaves them (name, entry-point tag,
params, final metrics at step 0, curves), for tests of what reads runs back: the report, the browser."""

from __future__ import annotations

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

ENTRY_TAG = "projects.entry_point"


def make_run(
    client: MlflowClient,
    experiment_id: str,
    entry: str,
    *,
    name: str,
    start_ms: int,
    params: dict | None = None,
    metrics: dict | None = None,
    curves: dict | None = None,
    tags: dict | None = None,
    status: str = "FINISHED",
) -> str:
    """A run of ``entry``; ``curves``: ``{metric: [(step, value), ...]}``; ``status`` RUNNING leaves it open."""
    run_id = client.create_run(experiment_id, start_time=start_ms, run_name=name).info.run_id
    batch = [Metric(k, float(v), start_ms, 0) for k, v in (metrics or {}).items()]
    for key, points in (curves or {}).items():
        batch += [Metric(key, float(value), start_ms + step, step) for step, value in points]
    client.log_batch(
        run_id,
        metrics=batch,
        params=[Param(k, str(v)) for k, v in (params or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in {ENTRY_TAG: entry, **(tags or {})}.items()],
    )
    if status != "RUNNING":
        client.set_terminated(run_id, status, end_time=start_ms + 60_000)
    return run_id
