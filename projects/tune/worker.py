"""A tune worker process: the target of the processes the tune run starts (``workers`` > 1)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from projects.core.errors import ProjectError
from projects.tune.objective import Job, run_worker


def worker_main(job: dict[str, Any], threads: int, env: dict[str, str], cwd: str) -> None:
    """Run one worker; exits non-zero on a user error (one line) or an interrupt."""
    import torch

    from projects.core.tracking import configure_tracking

    # A forkserver outlives the call that started it: take the caller's environment (tracking URI,
    # experiment, checkpoint root) and folder now, not the forkserver's.
    os.environ.clear()
    os.environ.update({k: v for k, v in env.items() if k != "MLFLOW_RUN_ID"})
    os.chdir(cwd)
    configure_tracking()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(threads)
    try:
        run_worker(Job(**job))
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
