"""Run an entry point under ``mlflow run`` whose launcher already logged the parameters as strings.

Workaround until ``projects.core.tracking.tracked_run`` does this itself (as ``projects.nerf.train`` does
too): the launcher logs ``'true'`` / ``'0'`` where ``to_params`` gives ``True`` / ``0.0``, and MLflow
refuses to change a logged param, so params the run already has are not logged again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import mlflow
from mlflow.tracking import MlflowClient

T = TypeVar("T")


def keep_launcher_params(run: Callable[..., T]) -> Callable[..., T]:
    """``run`` with ``mlflow.log_params`` skipping keys the active run has logged already."""

    @functools.wraps(run)
    def wrapped(*args: Any, **kwargs: Any) -> T:
        original = mlflow.log_params

        def log_new_params(params: dict[str, Any], *a: Any, **kw: Any) -> Any:
            active = mlflow.active_run()
            logged = MlflowClient().get_run(active.info.run_id).data.params if active else {}
            return original({k: v for k, v in params.items() if k not in logged}, *a, **kw)

        mlflow.log_params = log_new_params
        try:
            return run(*args, **kwargs)
        finally:
            mlflow.log_params = original

    return wrapped
