"""Optuna studies over the MLflow entry points, with per-epoch pruning.

``studies/<name>.yaml`` declares a study (entry point, search space, objective, pruner, base params);
``projects.tune.run`` (the ``tune`` entry point) runs its trials in one or more worker processes against a
shared Optuna storage, each trial being the entry point's own tracked run nested under the tune run.
"""
