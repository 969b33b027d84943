"""Entry-point wrapper: parse the typed config, check the environment, run; user errors become one line.

Exit codes: 0 success; 2 bad input (nothing computed); 1 a run that could not go on (``TrainingError``);
128 + signal number after SIGINT (130) or SIGTERM (143), the run KILLED with a checkpoint.

``nproc_per_node`` > 1 re-executes the command under ``torchrun --standalone`` (same process id, so
``mlflow run`` waits for the whole job); under ``torchrun`` every process joins the process group here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from projects.core import distributed, guardian, signals
from projects.core.config import parse_args
from projects.core.errors import ConfigError, ProjectError
from projects.core.preflight import preflight

C = TypeVar("C")

EXIT_USER_ERROR = 2


def _note_on_launcher_run(message: str) -> None:
    """Under ``mlflow run``, an error before our run started: say why on the launcher's run (which the
    launcher then marks FAILED)."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        return
    from mlflow.tracking import MlflowClient

    with contextlib.suppress(Exception):
        MlflowClient().set_tag(run_id, guardian.END_REASON_TAG, message[:5000])


def _name_launcher_run(config: Any) -> None:
    """Under ``mlflow run``: give the launcher's run its real name now, before data loading, so that its
    random name (``melodic-mare-881``) is not what the UI lists meanwhile; and say when it landed in the
    Default experiment."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id or not distributed.is_main():
        return
    from mlflow.tracking import MlflowClient

    from projects.core.tracking import default_run_name, label_experiment, main_module_name, study_experiment
    from projects.entrypoints import ENTRY_POINTS

    module = main_module_name()
    entry = next((name for name, path in ENTRY_POINTS.items() if path == module), None)
    if entry is None:
        return
    with contextlib.suppress(Exception):  # naming is cosmetic; the run itself decides success
        client = MlflowClient()
        client.set_tag(run_id, "mlflow.runName", default_run_name(config, entry))
        experiment_id = client.get_run(run_id).info.experiment_id
        label_experiment(experiment_id)
        study = study_experiment(module)
        if experiment_id == "0" and study:
            logging.getLogger(__name__).warning(
                "this run is in MLflow's Default experiment; `mlflow run ... --experiment-name %s` groups "
                "it with its study",
                study[0],
            )


def _uses_cuda(config: Any) -> bool:
    from projects.core.loop import resolve_device

    return resolve_device(getattr(config, "device", "cpu")).type == "cuda"


def _relaunch_under_torchrun(config: Any, argv: Sequence[str] | None) -> None:
    """Replace this process by ``torchrun`` running the same command in ``nproc_per_node`` processes."""
    nproc = getattr(config, "nproc_per_node", 1)
    if nproc <= 1 or distributed.launched():
        return
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is None or spec.name != type(config).__module__.replace("__main__", spec.name):
        raise ConfigError(
            f"nproc_per_node={nproc} starts processes of its own: run the entry point as a command "
            "(python -m ..., mlflow run, or torchrun)"
        )
    args = list(sys.argv[1:] if argv is None else argv)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [*cmd, "-m", spec.name, *args])


def main(config_cls: type[C], run: Callable[[C], Any], argv: Sequence[str] | None = None) -> None:
    """``python -m projects.<study>.<task> --param value ...``: the body of every entry point."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        with signals.handled(), guardian.enabled():
            guardian.follow_launcher()
            config = parse_args(config_cls, argv)
            _relaunch_under_torchrun(config, argv)
            _name_launcher_run(config)
            preflight()
            distributed.init(use_cuda=_uses_cuda(config))
            try:
                run(config)
            finally:
                distributed.shutdown()
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        _note_on_launcher_run(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        name = getattr(exc, "signal_name", "SIGINT")
        print(
            f"interrupted ({name}): the run is marked KILLED; re-run the same command to resume",
            file=sys.stderr,
        )
        sys.exit(exc.exit_code if isinstance(exc, signals.Interrupted) else 130)
