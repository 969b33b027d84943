"""Checks of the environment that every entry point runs before it reads data or spends compute: the
checkpoint folder and a local artifact store are writable, a tracking server answers."""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from projects.core.errors import ConfigError
from projects.core.tracking import CHECKPOINT_ROOT_ENV, configure_tracking, redact


def check_writable(folder: Path, what: str, hint: str) -> None:
    """Write and remove a temp file in ``folder``, or in its nearest existing parent (nothing is created)."""
    probe = folder.resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{what} {folder} is not writable ({exc.strerror or exc}); {hint}") from None


def check_tracking_server(uri: str, timeout_s: float = 10.0) -> None:
    """An http(s) tracking URI must answer ``/health`` (MLflow's own client would retry for minutes)."""
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(f"tracking server {redact(uri)} is unreachable ({reason})") from None


def local_artifact_root(uri: str) -> Path | None:
    """Where a local store puts the artifacts of the experiment this process logs to (None: remote).

    A SQLite store that does not exist yet will put them under ``./mlruns`` (MLflow's default); it is
    not created here, so that bad input leaves nothing behind.
    """
    import mlflow

    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return Path("mlruns")
    experiment_id = os.environ.get("MLFLOW_EXPERIMENT_ID")
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
    experiment = (
        mlflow.get_experiment(experiment_id)
        if experiment_id
        else mlflow.get_experiment_by_name(name or "Default")
    )
    location = experiment.artifact_location if experiment else "mlruns"
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme in ("", "file"):
        return Path(urllib.parse.unquote(parsed.path) if parsed.scheme else location)
    return None


def preflight() -> None:
    """Raise one ``ConfigError`` line for the first problem found."""
    hint = f"set {CHECKPOINT_ROOT_ENV} to a writable folder"
    check_writable(Path(os.environ.get(CHECKPOINT_ROOT_ENV, "checkpoints")), "checkpoint folder", hint)
    uri = configure_tracking()
    if uri.startswith(("http://", "https://")):
        check_tracking_server(uri)
        return
    root = local_artifact_root(uri)
    if root is not None:
        check_writable(root, "artifact store", "make it writable or point MLFLOW_TRACKING_URI elsewhere")
