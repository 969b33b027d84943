"""Shared core: config/CLI, tracking, registry, checkpoints, data, models, optimisers, training loop."""
