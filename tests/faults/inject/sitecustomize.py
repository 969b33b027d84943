"""Fault injection for the fault suite: on ``PROJECTS_FAULT`` the entry-point process kills or signals
itself at an exact point. Put this folder first on ``PYTHONPATH``; Python imports it at start-up.

- ``kill_at_step=N``: SIGKILL inside optimiser step N (after the batch is transformed, before the update)
- ``sigterm_at_step=N``: SIGTERM at the same point (the graceful stop finishes the step)
- ``kill_in_checkpoint_write=K``: SIGKILL during the K-th write of ``last.pt``, after the temp file
  is written and before it replaces the previous checkpoint
- ``pause_at_step=N``: in step N, create the file ``PROJECTS_FAULT_MARKER`` and sleep 5 s (the test
  acts meanwhile: a Ctrl-C to the process group, a remount)
- ``kill_in_registration``: SIGKILL right after the model version is created, before its alias is set

Patches are applied when the patched module is first imported, so the ``mlflow run`` launcher (which
never imports ``projects``) is untouched.
"""

import importlib.abc
import importlib.util
import os
import signal
import sys

FAULT, _, ARG = os.environ.get("PROJECTS_FAULT", "").partition("=")


def _signal_at_step(module, sig):
    original = module.Trainer.train_step

    def train_step(self, batch):
        if self.global_step + 1 == int(ARG):
            os.kill(os.getpid(), sig)
        return original(self, batch)

    module.Trainer.train_step = train_step


def _pause_at_step(module):
    import time
    from pathlib import Path

    original = module.Trainer.train_step

    def train_step(self, batch):
        if self.global_step + 1 == int(ARG):
            Path(os.environ["PROJECTS_FAULT_MARKER"]).touch()
            time.sleep(5)
        return original(self, batch)

    module.Trainer.train_step = train_step


def _kill_in_checkpoint_write(module):
    calls = {"n": 0}

    class OsWithFault:
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def replace(src, dst):
            if os.path.basename(dst) == "last.pt":
                calls["n"] += 1
                if calls["n"] == int(ARG):
                    os.kill(os.getpid(), signal.SIGKILL)
            os.replace(src, dst)

    module.os = OsWithFault()


def _kill_in_registration(module):
    from mlflow.tracking import MlflowClient

    original = MlflowClient._create_model_version  # what mlflow.register_model calls

    def create_model_version(self, *args, **kwargs):
        version = original(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return version

    MlflowClient._create_model_version = create_model_version


PATCHES = {
    "kill_at_step": ("projects.core.loop", lambda m: _signal_at_step(m, signal.SIGKILL)),
    "sigterm_at_step": ("projects.core.loop", lambda m: _signal_at_step(m, signal.SIGTERM)),
    "pause_at_step": ("projects.core.loop", _pause_at_step),
    "kill_in_checkpoint_write": ("projects.core.checkpoint", _kill_in_checkpoint_write),
    "kill_in_registration": ("projects.core.registry", _kill_in_registration),
}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def __init__(self, target, patch):
        self.target, self.patch = target, patch

    def find_spec(self, name, path=None, target=None):
        if name != self.target:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            self.patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


if FAULT:
    sys.meta_path.insert(0, _PatchOnImport(*PATCHES[FAULT]))
