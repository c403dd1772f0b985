"""A run's model and training recipe. The defaults a config may leave out are the schema's
(`$defs/model`, `$defs/train` in workflow/schemas/config.schema.yaml), read once at import."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from typing import Any

from ..image_encoders import image_encoder
from ..schema import defaults, load

MODEL_DEFAULTS = defaults("$defs.model")
TRAIN_DEFAULTS = defaults("$defs.train")
LOSSES: tuple[str, ...] = tuple(load()["$defs"]["train"]["properties"]["loss"]["enum"])


@dataclasses.dataclass
class ModelSettings:
    arch: str = MODEL_DEFAULTS["arch"]
    pretrained: str | None = MODEL_DEFAULTS["pretrained"]  # a tag, a checkpoint path, or None (random init)
    force_quick_gelu: bool = MODEL_DEFAULTS["force_quick_gelu"]
    grad_checkpointing: bool = MODEL_DEFAULTS["grad_checkpointing"]
    trust_checkpoint: bool = MODEL_DEFAULTS["trust_checkpoint"]  # read a `pretrained` path with weights_only=False
    # the towers that keep the pretrained weights; the others are freshly initialised (models.pretrained_towers)
    pretrained_towers: tuple[str, ...] = tuple(MODEL_DEFAULTS["pretrained_towers"])
    image_init: str | None = MODEL_DEFAULTS["image_init"]  # an entry of remoteclip.image_encoders.IMAGE_ENCODERS
    image_checkpoint: str | None = MODEL_DEFAULTS["image_checkpoint"]  # that entry's weights, from a file

    def __post_init__(self):
        self.pretrained_towers = tuple(self.pretrained_towers)
        if self.image_checkpoint and not self.image_init:
            raise ValueError("model.image_checkpoint is given without model.image_init (which entry's layout it has)")
        if self.image_init:  # an entry that cannot be had is refused here, before any training
            entry = image_encoder(self.image_init)
            # no file to fetch: a checkpoint of one's own helps only where there is an architecture for it
            if entry.unavailable and not (self.image_checkpoint and entry.timm_model):
                raise ValueError(f"model.image_init {entry.name} ({entry.title}): {entry.unavailable}")


@dataclasses.dataclass
class TrainSettings:
    batch_size: int = TRAIN_DEFAULTS["batch_size"]  # global, across ranks and accumulation steps
    accum_steps: int = TRAIN_DEFAULTS["accum_steps"]  # micro-batches per optimiser step (features cached)
    steps: int | None = TRAIN_DEFAULTS["steps"]
    epochs: float | None = TRAIN_DEFAULTS["epochs"]  # used when steps is None
    lr: float = TRAIN_DEFAULTS["lr"]
    min_lr: float = TRAIN_DEFAULTS["min_lr"]
    warmup: int = TRAIN_DEFAULTS["warmup"]  # steps of linear warm-up, then cosine to min_lr
    weight_decay: float = TRAIN_DEFAULTS["weight_decay"]
    betas: tuple[float, float] = tuple(TRAIN_DEFAULTS["betas"])
    eps: float = TRAIN_DEFAULTS["eps"]
    precision: str = TRAIN_DEFAULTS["precision"]  # auto: bf16 (else fp16) autocast on CUDA, fp32 on CPU
    grad_clip: float | None = TRAIN_DEFAULTS["grad_clip"]
    crop_scale: tuple[float, float] = tuple(TRAIN_DEFAULTS["crop_scale"])
    hflip: bool = TRAIN_DEFAULTS["hflip"]
    rot90: bool = TRAIN_DEFAULTS["rot90"]
    simclr: bool = TRAIN_DEFAULTS["simclr"]  # SimCLR's colour distortion and blur (data.simclr_colour)
    workers: int = TRAIN_DEFAULTS["workers"]  # DataLoader workers per rank
    open_shards: int = TRAIN_DEFAULTS["open_shards"]  # shard files open per loader process (reader.OpenShards)
    skip_bad_shards: bool = TRAIN_DEFAULTS["skip_bad_shards"]  # else a missing or truncated shard stops the run
    checkpoint_every: int = TRAIN_DEFAULTS["checkpoint_every"]
    keep_checkpoints: int = TRAIN_DEFAULTS["keep_checkpoints"]
    log_every: int = TRAIN_DEFAULTS["log_every"]
    seed: int = TRAIN_DEFAULTS["seed"]
    device: str = TRAIN_DEFAULTS["device"]
    # speed only (not in the fingerprint): remoteclip.train.speed
    loader: str = TRAIN_DEFAULTS["loader"]  # cpu: workers decode and augment; device: the training device does
    compile: bool | str = TRAIN_DEFAULTS["compile"]  # true: inductor; or a torch.compile backend name
    fused_adamw: bool | str = TRAIN_DEFAULTS["fused_adamw"]  # auto: on CUDA
    channels_last: bool | str = TRAIN_DEFAULTS["channels_last"]  # auto: convolutional image towers on CUDA
    peak_tflops: float | None = TRAIN_DEFAULTS["peak_tflops"]  # for log.csv's mfu; None: speed.PEAK_TFLOPS
    loss: str = TRAIN_DEFAULTS["loss"]  # remoteclip.train.losses
    # every loss's options, the schema's defaults under what a config gives
    loss_options: dict[str, dict[str, Any]] = dataclasses.field(
        default_factory=lambda: copy.deepcopy(TRAIN_DEFAULTS["loss_options"])
    )

    def __post_init__(self):
        if self.steps is None and self.epochs is None:
            raise ValueError("train: give steps or epochs")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"train.precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        self.betas, self.crop_scale = tuple(self.betas), tuple(self.crop_scale)
        if self.loss not in LOSSES:
            raise ValueError(f"train.loss: unknown loss {self.loss!r}; known: {', '.join(LOSSES)}")
        self.loss_options = _loss_options(self.loss_options)
        if self.loader not in ("cpu", "device"):
            raise ValueError(f"train.loader must be cpu or device, got {self.loader!r}")
        if isinstance(self.compile, str):  # a backend by name: one torch.compile knows
            from torch._dynamo import list_backends

            known = list_backends(exclude_tags=())
            if self.compile not in known:
                raise ValueError(f"train.compile: unknown backend {self.compile!r}; known: {', '.join(known)}")
        if self.loader == "device" and self.simclr:
            raise ValueError("train.simclr runs in the DataLoader workers: use it with train.loader cpu")


def _loss_options(given: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The schema's options of every loss with `given` over them (a config the validator did
    not fill, e.g. a test's, may give a few); unknown names are an error, as in the schema."""
    known = TRAIN_DEFAULTS["loss_options"]
    for loss, options in given.items():
        if loss not in known:
            raise ValueError(f"train.loss_options: {loss!r} has no options; losses with options: {', '.join(known)}")
        unknown = set(options) - set(known[loss])
        if unknown:
            raise ValueError(
                f"train.loss_options.{loss}: unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(known[loss])}"
            )
    return {loss: {**defaults_, **given.get(loss, {})} for loss, defaults_ in known.items()}


def from_config(model: dict[str, Any], train: dict[str, Any]) -> tuple[ModelSettings, TrainSettings]:
    return ModelSettings(**model), TrainSettings(**train)


# settings added after runs were first fingerprinted: left out while at their default, so a
# checkpoint written before they existed still resumes
_ADDED = {"pretrained_towers", "image_init", "image_checkpoint", "simclr"}


def _added_at_default(key: str, value: Any, defaults: dict[str, Any]) -> bool:
    default = defaults.get(key)
    return key in _ADDED and (list(value) if isinstance(value, tuple) else value) == default


# how a run is carried out, not what it learns: changing these resumes the same checkpoints
_NOT_RECIPE = {
    *("workers", "checkpoint_every", "keep_checkpoints", "log_every", "device", "loss", "loss_options"),
    # which shards a run reads is in the fingerprint through their digests, not these switches
    *("open_shards", "skip_bad_shards"),
    *("loader", "compile", "fused_adamw", "channels_last", "peak_tflops"),
}


def fingerprint(
    model: ModelSettings, train: TrainSettings, shards: list[str], mixing: dict[str, float] | None = None
) -> str:
    """`shards`: the shards' content digests (manifest sha256), not their paths; `mixing`: the
    sources' sampling weights where any is not 1 (left out otherwise, so an unweighted run keeps
    the fingerprint it had before weights existed)."""
    # what makes two runs the same trajectory, so a checkpoint of another recipe or other
    # data is never resumed; worker counts and logging cadence do not change it
    recipe = {
        k: v
        for k, v in dataclasses.asdict(train).items()
        if k not in _NOT_RECIPE and not _added_at_default(k, v, TRAIN_DEFAULTS)
    }
    if train.loss != "infonce":
        # only the chosen loss's options change the trajectory; InfoNCE runs keep the
        # fingerprint they had before the loss was configurable, so their checkpoints resume
        recipe["loss"] = {"name": train.loss, "options": train.loss_options.get(train.loss, {})}
    weights = {
        k: v
        for k, v in dataclasses.asdict(model).items()
        if k != "trust_checkpoint" and not _added_at_default(k, v, MODEL_DEFAULTS)
    }
    content: dict[str, Any] = {"model": weights, "train": recipe, "shards": sorted(shards)}
    if mixing:
        content["weights"] = mixing
    blob = json.dumps(content, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
