"""One process per run on a machine: an exclusive ``flock`` per run id, held while the process runs it.

The kernel drops the lock when the process dies, however it dies, so "the lock is free" means "no live
process on this machine runs it": a RUNNING run whose lock is free was left by a dead process and may be
resumed, and two processes resuming the same run at once cannot both get it. The lock files live in
the machine's temp folder, not in the working folder, so that runs started from different folders see
each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path

from projects.core.errors import ConfigError


def lock_path(run_id: str) -> Path:
    folder = Path(tempfile.gettempdir()) / "projects-run-locks"
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # shared by every user of the machine, like /tmp itself
            folder.chmod(0o1777)
    return folder / f"{run_id}.lock"


class RunLock:
    """Held by this process until :meth:`release` (or its death)."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.fd: int | None = os.open(lock_path(run_id), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise ConfigError(
                f"run {run_id} is being run by another process on this machine; wait for it to end, "
                "or pass resume=false to start a separate run"
            ) from None

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def is_held(run_id: str) -> bool:
    """Whether a live process on this machine holds ``run_id``'s lock."""
    try:
        RunLock(run_id).release()
    except ConfigError:
        return True
    return False
