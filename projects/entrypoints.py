"""Every MLflow entry point: name -> module. Each module defines ``Config`` (a dataclass) and ``run``.

SSL methods are entry points by being modules of :mod:`projects.ssl.methods` (``simclr``, ``byol``,
``mocov3``, ...). ``MLproject`` is generated from this table (``python -m projects.core.mlproject``) and
a test keeps it in sync, so CLI flags, MLproject parameters and MLflow params are the same names by
construction.
"""

from projects.ssl.methods import method_names

ENTRY_POINTS: dict[str, str] = {
    "nerf": "projects.nerf.train",
    **{name: f"projects.ssl.methods.{name}" for name in method_names()},
    "linear_eval": "projects.ssl.linear_eval",
    "finetune": "projects.ssl.finetune",
    "supervised": "projects.ssl.supervised",
    "tune": "projects.tune.run",
    "ssl_study": "projects.ssl.study",
    "classify": "projects.classify.train",
    "vit_vs_cnn": "projects.classify.compare",
    "report": "projects.report.run",
}
