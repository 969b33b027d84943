"""User-facing errors: each is printed as one line ``error: ...`` and the entry point exits non-zero."""


class ProjectError(Exception):
    """Base of errors caused by user input, missing files or the environment (not bugs)."""

    exit_code = 2  # bad input, found before any compute is spent


class ConfigError(ProjectError, ValueError):
    """A parameter is invalid."""


class DataError(ProjectError):
    """A dataset is missing or malformed."""


class CheckpointError(ProjectError):
    """A checkpoint or model URI cannot be loaded."""


class TrainingError(ProjectError):
    """Training cannot go on (a non-finite loss, a full disk, an unwritable store); the run ends FAILED
    and its last checkpoint stays resumable."""

    exit_code = 1
