"""Atomic checkpoints, loaded with ``weights_only=True``."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from projects.core.errors import CheckpointError, TrainingError


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to a temp file beside ``path``, then rename: a crash never leaves half a file.

    A full disk or an unwritable folder is one ``TrainingError`` line; the previous file stays intact.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        buffer = io.BytesIO()  # serialised first: torch.save reports a failed write as a RuntimeError
        torch.save(state, buffer)
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise TrainingError(
                f"cannot write checkpoint {path} ({exc.strerror or exc}); the previous checkpoint is "
                "intact: free space or fix the folder, then re-run the same command to resume"
            ) from None
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; one clear error if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # the unpickler raises many types for a file that is not a checkpoint
        raise CheckpointError(f"{path} is not a torch checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, expected a dict of state")
    return state
