"""The one way a model is built, for training and for scoring alike: open_clip's factory with the
activation its weights were trained with (QuickGELU rules), its starting weights (a tag, a
checkpoint file, or the hybrid of Table V's initialisation ablation: a CLIP text tower beside
an image encoder's trunk), the towers Table V's backbone ablation keeps, and, for a trained
model, its checkpoint loaded over all of it strictly (`state.load_strict`).

A checkpoint is read by `remoteclip.weights.files` (weights_only=True unless trusted by name).
The zoo's releases, whose files come in their authors' layouts, are read by `models.loaders`,
which builds them through `build` too."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import open_clip
import torch

from ..image_encoders import ImageEncoderError, buildable, image_encoder, text_arch_of
from ..weights.cache import is_checkpoint_path
from ..weights.files import read_state_dict
from .configs import check_architecture, register_hybrid
from .hybrid_towers import attach_image_tower, checkpoint_of
from .pretrained_towers import TOWERS, check_towers, reinitialise
from .state import load_strict

log = logging.getLogger(__name__)


def uses_quick_gelu(arch: str, pretrained: str | None, force: bool = False) -> bool:
    """OpenAI's weights were trained with QuickGELU. open_clip 3 builds `ViT-B-32` with GELU
    even for pretrained="openai" (it only warns), so the tag's own flag decides here."""
    if force or arch.endswith("-quickgelu"):
        return True
    arch = text_arch_of(arch)  # a hybrid's activation is its text tower's, as `arch` was trained
    if pretrained and not is_checkpoint_path(pretrained):
        return bool(open_clip.get_pretrained_cfg(arch, pretrained).get("quick_gelu", False))
    return False


def build(
    arch: str,
    pretrained: str | None = None,
    quick_gelu: bool = False,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    cache_dir: str | None = None,
):
    """(model, train transform, val transform) from open_clip's factory; `pretrained` is a tag
    whose weights are looked up in `cache_dir` (the weights cache's open_clip folder), or None."""
    check_architecture(arch)
    return open_clip.create_model_and_transforms(
        arch,
        pretrained=pretrained,
        device=device,
        force_quick_gelu=quick_gelu,
        precision=precision,
        cache_dir=cache_dir,
    )


def load_checkpoint(model: torch.nn.Module, path: str | Path, arch: str, trust: bool = False) -> None:
    """Load a checkpoint file's state dict strictly into `model` (read safely unless `trust`)."""
    load_strict(model, read_state_dict(path, trust), f"{path} as architecture {arch}")


def keep_towers(
    model: torch.nn.Module,
    arch: str,
    towers: Iterable[str],
    seed: int,
    quick_gelu: bool = False,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> None:
    """Freshly initialise the towers of `model` not in `towers` (models.pretrained_towers:
    open_clip's own init of a new `arch` model, built while torch's generator is seeded with `seed`)."""
    towers = check_towers(towers)
    if set(towers) == set(TOWERS):
        return
    replaced = reinitialise(model, towers, lambda: build(arch, None, quick_gelu, device, precision)[0], seed)
    log.info(
        "kept pretrained towers %s of %s; %d tensors freshly initialised (seed %d)", towers, arch, len(replaced), seed
    )


def create(
    arch: str,
    pretrained: str | None = None,
    device: str | torch.device = "cpu",
    quick_gelu: bool | None = None,
    precision: str = "fp32",
    trust_checkpoint: bool = False,
    cache_dir: str | None = None,
    pretrained_towers: Iterable[str] = TOWERS,
    seed: int = 0,
    image_init: str | None = None,
    image_checkpoint: str | None = None,
    weights_cache: str | Path | None = None,
    checkpoint: str | Path | None = None,
):
    """(model, train transform, val transform) as a run starts from them, or, with `checkpoint`,
    as it ended. `pretrained` is a tag (e.g. "openai"), a checkpoint path (read with
    weights_only=True unless `trust_checkpoint`, see remoteclip.weights.files), or None for
    random initialisation. `quick_gelu`: None as the weights were trained (`uses_quick_gelu`),
    True or False to say so. Towers left out of `pretrained_towers` are freshly initialised
    from `seed` (`keep_towers`).

    `image_init` (paper Table V, initialisation ablation; remoteclip.image_encoders): the model
    is the hybrid "<arch>+<image_init>", `arch`'s text tower from `pretrained` and the entry's
    timm image tower from `image_checkpoint` or its file fetched into `weights_cache`.

    `checkpoint`: a trained model's weights (a run's export), loaded strictly over the model
    built from the rest, which must be its architecture."""
    check_architecture(arch)  # before a missing file: the architecture is the first thing wrong
    check_towers(pretrained_towers)
    quick = uses_quick_gelu(arch, pretrained) if quick_gelu is None else quick_gelu
    if image_init:
        if set(pretrained_towers) != set(TOWERS):  # two ablations at once: the image tower would be both
            raise ValueError(
                f"model.image_init {image_init} gives the image tower its own weights; "
                f"model.pretrained_towers must then keep both towers, not {sorted(pretrained_towers)}"
            )
        model, train_tf, val_tf = _create_hybrid(
            arch, pretrained, image_init, image_checkpoint, weights_cache, quick, precision, trust_checkpoint, cache_dir
        )
        arch = f"{arch}+{image_init}"
    else:
        path = pretrained if is_checkpoint_path(pretrained) else None
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"checkpoint {path} does not exist")
        model, train_tf, val_tf = build(arch, None if path else pretrained, quick, device, precision, cache_dir)
        if path is not None:
            load_checkpoint(model, path, arch, trust_checkpoint)
            log.info("loaded %s into %s", path, arch)
        keep_towers(model, arch, pretrained_towers, seed, quick, device, precision)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, arch, trust_checkpoint)
        log.info("loaded the trained weights %s into %s", checkpoint, arch)
    return model.to(device), train_tf, val_tf


def _create_hybrid(
    arch: str,
    pretrained: str | None,
    name: str,
    image_checkpoint: str | None,
    weights_cache: str | Path | None,
    quick_gelu: bool,
    precision: str,
    trust_checkpoint: bool,
    cache_dir: str | None,
):
    """ "<arch>+<name>" as a run starts from it: the text tower of `arch` with its `pretrained`
    weights (a tag from the cache, or a file), the trunk from the entry's checkpoint
    (`image_checkpoint`, else the fetched one in `weights_cache`; read with weights_only=True:
    `trust_checkpoint` is for `pretrained`). Checked in the order a user would fix things: the
    entry, then its file, then the fit of the weights. Built on the CPU; `create` moves it."""
    if precision != "fp32":  # its towers come from two files: cast by autocast, not here
        raise ImageEncoderError(f"model.image_init: the hybrid {arch}+{name} is built in fp32 only, not {precision}")
    entry = buildable(image_encoder(name))
    trunk_file = checkpoint_of(entry, image_checkpoint, weights_cache)
    hybrid = register_hybrid(arch, name)
    clip, _, _ = create(arch, pretrained, "cpu", quick_gelu, trust_checkpoint=trust_checkpoint, cache_dir=cache_dir)
    model, train_tf, val_tf = build(hybrid, None, quick_gelu, "cpu", "fp32")
    attach_image_tower(model, clip, entry, trunk_file)
    return model, train_tf, val_tf
