"""open_clip models for training and evaluation alike: the architectures (open_clip's, custom
ones from config/models/*.json and Table V's hybrids; `configs`), the one way to build a model
with the right activation and weights (`factory`), which towers keep their pretrained weights
(`pretrained_towers`), a hybrid's image trunk and text tower (`hybrid_towers`), the one strict
state-dict loader (`state`), the zoo's releases by their formats (`loaders`), and writing the
plain state dicts we export (`export`).

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
from .factory import build, create, keep_towers, load_checkpoint, uses_quick_gelu
from .pretrained_towers import TOWERS, UnknownTower, reinitialise
from .state import KeyMismatch, load_strict

__all__ = [
    "PRETRAINED_TAGS",
    "TOWERS",
    "KeyMismatch",
    "UnknownTower",
    "UnknownArchitecture",
    "build",
    "check_architecture",
    "config_dirs",
    "create",
    "export",
    "keep_towers",
    "load_checkpoint",
    "load_strict",
    "reinitialise",
    "register_model_configs",
    "register_pretrained_tags",
    "unwrap",
    "uses_quick_gelu",
]
