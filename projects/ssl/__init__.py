"""Study 1: SimCLR pretraining of ResNet encoders, evaluated on CIFAR-100 against baselines."""

# The MLflow experiment this study's runs go to by default (projects.core.tracking.study_experiment).
EXPERIMENT = "ssl"
EXPERIMENT_DESCRIPTION = (
    "Self-supervised pretraining (SimCLR, BYOL, MoCo v3) of ResNet-18 encoders, judged by kNN top-1 during "
    "pretraining and by linear probe / fine-tuning on CIFAR-100, against supervised, ImageNet and random "
    "baselines (entry points simclr, byol, mocov3, linear_eval, finetune, supervised, ssl_study)."
)
