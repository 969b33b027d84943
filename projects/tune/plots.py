"""Study plots as self-contained plotly HTML artifacts of the tune run."""

from __future__ import annotations

import logging

import optuna
from optuna.trial import TrialState

from projects.core.tracking import log_figure_html

log = logging.getLogger(__name__)


def log_study_plots(study: optuna.Study, prefix: str = "plots") -> list[str]:
    """Optimization history, intermediate values (the pruned curves), parameter importances; returns the
    artifact names logged. A plot Optuna cannot draw yet (e.g. importances need 2+ complete trials) is
    skipped with a log line rather than failing the study."""
    from optuna import visualization as vis

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    plots = {
        "optimization_history": lambda: vis.plot_optimization_history(study),
        "intermediate_values": lambda: vis.plot_intermediate_values(study),
    }
    if len(complete) >= 2:
        plots["param_importances"] = lambda: vis.plot_param_importances(study)
    logged = []
    for name, make in plots.items():
        try:
            figure = make()
        except Exception as exc:  # plotting is a report, never a reason to fail the tune run
            log.warning("skipping plot %s: %s", name, exc)
            continue
        log_figure_html(figure, f"{prefix}/{name}.html")
        logged.append(name)
    return logged
