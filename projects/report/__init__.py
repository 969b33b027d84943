"""The cross-study report: one self-contained HTML page rebuilt from what MLflow holds.

``python -m projects.report.run --output report.html`` (or ``mlflow run . -e report``) finds each study's
newest finished runs by their ``projects.entry_point`` tag (:mod:`projects.report.collect`), draws their
tables and figures (:mod:`projects.report.html`) and writes one file that opens offline: inline SVG
figures, inline CSS, images as data URIs.
"""

# The MLflow experiment the report's own runs go to by default (projects.core.tracking.study_experiment).
EXPERIMENT = "reports"
EXPERIMENT_DESCRIPTION = (
    "Cross-study reports (entry point report): each run holds report.html, one self-contained page of the "
    "newest SSL, ViT-vs-CNN, NeRF and tune results, rebuilt from the runs of every experiment."
)
