"""NeRF study: nerfacto through nerfstudio's own tools, tracked in MLflow (entry point ``nerf``)."""

# The MLflow experiment this study's runs go to by default (projects.core.tracking.study_experiment).
EXPERIMENT = "nerf"
EXPERIMENT_DESCRIPTION = (
    "Photos or a video -> COLMAP poses -> nerfstudio nerfacto -> PSNR / SSIM / LPIPS on held-out views -> a "
    "rendered video; one run per scene capture (entry point nerf)."
)
