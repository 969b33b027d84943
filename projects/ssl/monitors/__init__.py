"""Per-epoch monitors of an encoder's quality during SSL pretraining, one module each (``probe``, ``knn``).

A monitor's value is what every automatic decision follows: ``best.pt``, Optuna's pruner and objective,
and the registry's ``champion``. The registry is the folder itself: a new monitor is one new module that
defines a :class:`~projects.ssl.monitors.base.Monitor` subclass with a ``name``, plus its tests.
"""

from __future__ import annotations

import importlib
import pkgutil

from projects.core.config import check_choice
from projects.ssl.monitors.base import Monitor

_NOT_MONITORS = {"base"}


def monitor_names() -> tuple[str, ...]:
    """Every monitor, without importing them: the modules of this folder."""
    names = (m.name for m in pkgutil.iter_modules(__path__))
    return tuple(sorted(n for n in names if not n.startswith("_") and n not in _NOT_MONITORS))


def get_monitor(name: str) -> type[Monitor]:
    """The monitor class ``name``; ConfigError naming the choices."""
    check_choice("monitor", name, monitor_names())
    module = importlib.import_module(f"{__name__}.{name}")
    return next(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Monitor) and getattr(v, "name", None) == name
    )


def monitor_metrics() -> tuple[str, ...]:
    """The MLflow metric of every monitor (``knn_top1``, ``probe_top1``): the ``eval_metric`` choices."""
    return tuple(get_monitor(name).metric for name in monitor_names())


def monitor_for_metric(metric: str) -> type[Monitor]:
    """The monitor that logs ``metric``; ConfigError naming the choices."""
    check_choice("eval_metric", metric, monitor_metrics())
    return next(m for m in map(get_monitor, monitor_names()) if m.metric == metric)
