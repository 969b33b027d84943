"""Every MLflow entry point: name -> module. Each module defines ``Config`` (a dataclass) and ``run``.

``MLproject`` is generated from this table (``python -m projects.core.mlproject``) and a test keeps it
in sync, so CLI flags, MLproject parameters and MLflow params are the same names by construction.
"""

ENTRY_POINTS: dict[str, str] = {
    "nerf": "projects.nerf.train",
    "simclr": "projects.ssl.simclr",
    "linear_eval": "projects.ssl.linear_eval",
    "finetune": "projects.ssl.finetune",
    "supervised": "projects.ssl.supervised",
    "tune": "projects.tune.run",
    "ssl_study": "projects.ssl.study",
    "classify": "projects.classify.train",
    "vit_vs_cnn": "projects.classify.compare",
}
