"""open_clip models for training and evaluation alike: the architectures (open_clip's and
custom ones from config/models/*.json), building one with the right activation and weights
(`factory`), which towers keep their pretrained weights (`towers`), and writing the plain
state dicts we export (`export`).

Training (`remoteclip.train`) and evaluation (`remoteclip.evaluate`) both import from here,
so scoring a checkpoint never needs the trainer.
"""

from .configs import (
    PRETRAINED_TAGS,
    UnknownArchitecture,
    check_architecture,
    config_dirs,
    register_model_configs,
    register_pretrained_tags,
)
from .export import export, unwrap
from .factory import ArchitectureMismatch, build, create, keep_towers, load_checkpoint, uses_quick_gelu
from .towers import TOWERS, UnknownTower, reinitialise

__all__ = [
    "PRETRAINED_TAGS",
    "TOWERS",
    "UnknownTower",
    "ArchitectureMismatch",
    "UnknownArchitecture",
    "build",
    "check_architecture",
    "config_dirs",
    "create",
    "export",
    "keep_towers",
    "load_checkpoint",
    "reinitialise",
    "register_model_configs",
    "register_pretrained_tags",
    "unwrap",
    "uses_quick_gelu",
]
