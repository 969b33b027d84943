"""Study plots as small SVG artifacts of the tune run (``plots/<name>.svg``), drawn by Optuna's
matplotlib backend, each legend below its axes inside the picture."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import optuna
from optuna.trial import TrialState

from projects.core.figures import legend_below, log_figure_svg

log = logging.getLogger(__name__)
# A study with more trials than this draws the intermediate values without a legend: dozens of
# "Trial n" entries would be larger than the plot and tell nothing the trials table does not.
MAX_LEGEND_TRIALS = 20


def _labelled(axes: Any, ylabel: str) -> Any:
    axes.set_ylabel(ylabel)
    return axes


def log_study_plots(study: optuna.Study, prefix: str = "plots") -> list[str]:
    """Optimization history, intermediate values (the pruned curves), parameter importances; returns the
    artifact names logged. A plot Optuna cannot draw yet (e.g. importances need 2+ complete trials) is
    skipped with a log line rather than failing the study."""
    from optuna.visualization import matplotlib as vis

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    # The objective's metric name (e.g. val_top1) on the axes, where the study declares it.
    target = (study.metric_names or ["Objective Value"])[0]
    plots = {
        "optimization_history": lambda: vis.plot_optimization_history(study, target_name=target),
        "intermediate_values": lambda: _labelled(vis.plot_intermediate_values(study), f"{target} per epoch"),
    }
    if len(complete) >= 2:
        plots["param_importances"] = lambda: vis.plot_param_importances(study, target_name=target)
    logged = []
    for name, make in plots.items():
        # Optuna switches pyplot to its ggplot style; the rc context restores the process's style after.
        with matplotlib.rc_context(), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            fig = None
            try:
                fig = make().figure
                fig.set_size_inches(8, 4.5)
                if name == "intermediate_values" and len(study.trials) > MAX_LEGEND_TRIALS:
                    legend_below(fig, [], [])  # removes the per-trial legend
                else:
                    legend_below(fig)
                log_figure_svg(fig, f"{prefix}/{name}.svg")
            except Exception as exc:  # plotting is a report, never a reason to fail the tune run
                log.warning("skipping plot %s: %s", name, exc)
                if fig is not None:
                    plt.close(fig)
                continue
        logged.append(name)
    return logged
