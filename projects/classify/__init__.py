"""Study 2: Transformer vs CNN on CIFAR-100 (``classify`` and ``vit_vs_cnn`` entry points)."""

# The MLflow experiment this study's runs go to by default (projects.core.tracking.study_experiment).
EXPERIMENT = "vit-vs-cnn"
EXPERIMENT_DESCRIPTION = (
    "A ViT and a ResNet-18 of nearly equal parameter counts trained on CIFAR-100 with one recipe (warmup + "
    "cosine, CutMix, label smoothing), each tuned fairly (entry points classify, vit_vs_cnn)."
)
