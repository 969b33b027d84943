"""Issue 3: Transformer vs CNN on CIFAR-100 (``classify`` and ``vit_vs_cnn`` entry points)."""
