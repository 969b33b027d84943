"""User-facing errors: each is printed as one line and the entry point exits non-zero."""


class ProjectError(Exception):
    """Base of errors caused by user input or missing files (not bugs)."""


class ConfigError(ProjectError, ValueError):
    """A parameter is invalid."""


class DataError(ProjectError):
    """A dataset is missing or malformed."""


class CheckpointError(ProjectError):
    """A checkpoint or model URI cannot be loaded."""
