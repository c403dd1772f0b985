"""Continual pretraining of open_clip models on a run's shards (single process, torchrun,
or SLURM); see `loop.train`."""

from .settings import ModelSettings, TrainSettings, from_config

__all__ = ["ModelSettings", "TrainSettings", "from_config"]
