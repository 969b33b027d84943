"""Study 1: SimCLR pretraining of ResNet encoders, evaluated on CIFAR-100 against baselines."""
