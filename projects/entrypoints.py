"""Every MLflow entry point: name -> module. Each module defines ``Config`` (a dataclass) and ``run``.

``MLproject`` is generated from this table (``python -m projects.core.mlproject``) and a test keeps it
in sync, so CLI flags, MLproject parameters and MLflow params are the same names by construction.
"""

ENTRY_POINTS: dict[str, str] = {
    "supervised": "projects.ssl.supervised",
}
