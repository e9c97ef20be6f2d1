"""Training SAM-Med3D-style networks: data crops, the interactive step, the resumable loop."""

from sammoe_core.training.loop import DataSource, TrainConfig, train

__all__ = ["DataSource", "TrainConfig", "train"]
