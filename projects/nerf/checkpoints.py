"""nerfstudio checkpoints on torch >= 2.6: loadable with ``weights_only=True``, written atomically, resumable.

nerfstudio's checkpoints hold numpy scalars (optimizer/scheduler state), which ``weights_only`` loading
rejects, so ns-eval, ns-render, ns-export and ``--load-dir`` fail as shipped. We allow-list exactly those
numpy globals rather than opting out of safe loading. Saves go through a temp file and a rename (a crash
never leaves half a checkpoint) and ``last.pt`` in the run's checkpoint folder points at the newest one,
which is what ``projects.core.tracking`` looks for to resume a run.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from projects.core.checkpoint import save_checkpoint

LAST = "last.pt"
STEP_FILE = re.compile(r"step-(\d+)\.ckpt$")


def allow_numpy_scalars() -> None:
    """Allow-list the numpy types nerfstudio's checkpoints pickle (scalars and their dtypes)."""
    dtypes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)]
    torch.serialization.add_safe_globals([np.core.multiarray.scalar, np.dtype, *dtypes])


def latest_checkpoint(checkpoint_dir: Path) -> tuple[Path, int] | None:
    """The newest ``step-*.ckpt`` in nerfstudio's checkpoint folder and its step."""
    found = [
        (int(m.group(1)), p) for p in checkpoint_dir.glob("step-*.ckpt") if (m := STEP_FILE.search(p.name))
    ]
    if not found:
        return None
    step, path = max(found)
    return path, step


def install_atomic_save(run_dir: Path) -> None:
    """Make nerfstudio's ``Trainer.save_checkpoint`` atomic; keep ``run_dir/last.pt`` on the newest save."""
    from nerfstudio.engine.trainer import Trainer

    def save(self: Trainer, step: int) -> None:
        # Same contents and file name as nerfstudio's own save; only the write is atomic.
        path = self.checkpoint_dir / f"step-{step:09d}.ckpt"
        pipeline = self.pipeline.module if hasattr(self.pipeline, "module") else self.pipeline
        state = {
            "step": step,
            "pipeline": pipeline.state_dict(),
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.optimizers.schedulers.items()},
            "scalers": self.grad_scaler.state_dict(),
        }
        save_checkpoint(state, path)
        link = run_dir / LAST
        tmp = link.with_name(f".{LAST}.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(path.resolve())
        tmp.replace(link)
        if self.config.save_only_latest_checkpoint:
            for old in self.checkpoint_dir.glob("*.ckpt"):
                if old != path:
                    old.unlink()

    Trainer.save_checkpoint = save  # type: ignore[method-assign]
