"""A run's model and training recipe, with the defaults a config may leave out."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


@dataclasses.dataclass
class ModelSettings:
    arch: str = "ViT-B-32"
    pretrained: str | None = "openai"  # a tag, a checkpoint path, or None (random init)
    force_quick_gelu: bool = False
    grad_checkpointing: bool = False
    trust_checkpoint: bool = False  # read a `pretrained` checkpoint path with weights_only=False


@dataclasses.dataclass
class TrainSettings:
    batch_size: int = 256  # global, across ranks and accumulation steps
    accum_steps: int = 1  # micro-batches per optimiser step (features cached, full-batch loss)
    steps: int | None = None
    epochs: float | None = 1.0  # used when steps is None
    lr: float = 4e-5
    min_lr: float = 0.0
    warmup: int = 500  # steps of linear warm-up, then cosine to min_lr
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    precision: str = "auto"  # auto: bf16 (else fp16) autocast on CUDA, fp32 on CPU; or fp32 / bf16 / fp16
    grad_clip: float | None = None
    crop_scale: tuple[float, float] = (0.9, 1.0)
    hflip: bool = True
    rot90: bool = True
    workers: int = 4  # DataLoader workers per rank
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        if self.steps is None and self.epochs is None:
            raise ValueError("train: give steps or epochs")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"train.precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        self.betas, self.crop_scale = tuple(self.betas), tuple(self.crop_scale)


def from_config(model: dict[str, Any], train: dict[str, Any]) -> tuple[ModelSettings, TrainSettings]:
    return ModelSettings(**model), TrainSettings(**train)


def fingerprint(model: ModelSettings, train: TrainSettings, shards: list[str]) -> str:
    """`shards`: the shards' content digests (manifest sha256), not their paths."""
    # what makes two runs the same trajectory, so a checkpoint of another recipe or other
    # data is never resumed; worker counts and logging cadence do not change it
    recipe = {k: v for k, v in dataclasses.asdict(train).items()
              if k not in ("workers", "checkpoint_every", "keep_checkpoints", "log_every", "device")}
    weights = {k: v for k, v in dataclasses.asdict(model).items() if k != "trust_checkpoint"}
    blob = json.dumps({"model": weights, "train": recipe, "shards": sorted(shards)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
