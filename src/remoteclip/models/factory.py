"""The one way a model is built: open_clip's factory with the activation its weights were
trained with (QuickGELU rules), then, when given, a checkpoint loaded strictly over it.

A checkpoint is read by `remoteclip.weights` (weights_only=True unless trusted by name)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import open_clip
import torch

from ..image_inits import text_arch_of
from ..weight_cache import is_checkpoint_path
from ..weights import read_state_dict
from .configs import check_architecture
from .towers import TOWERS, check_towers, reinitialise

log = logging.getLogger(__name__)


class ArchitectureMismatch(RuntimeError):
    """A checkpoint whose tensors do not fit the architecture it is loaded into."""


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
    state = read_state_dict(path, trust)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ArchitectureMismatch(f"{path} does not fit architecture {arch}: {str(exc).splitlines()[0]} ...") from None


def keep_towers(
    model: torch.nn.Module,
    arch: str,
    towers: Iterable[str],
    seed: int,
    quick_gelu: bool = False,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> None:
    """Freshly initialise the towers of `model` not in `towers` (models.towers: open_clip's own
    init of a new `arch` model, built while torch's generator is seeded with `seed`)."""
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
    force_quick_gelu: bool = False,
    precision: str = "fp32",
    trust_checkpoint: bool = False,
    cache_dir: str | None = None,
    pretrained_towers: Iterable[str] = TOWERS,
    seed: int = 0,
    image_init: str | None = None,
    image_checkpoint: str | None = None,
    weights_cache: str | Path | None = None,
):
    """(model, train transform, val transform) as a run starts from them; `pretrained` is a
    tag (e.g. "openai"), a checkpoint path (read with weights_only=True unless
    `trust_checkpoint`, see remoteclip.weights), or None for random initialisation. Towers left
    out of `pretrained_towers` are freshly initialised from `seed` (`keep_towers`).

    `image_init` (paper Table V, initialisation ablation; remoteclip.image_inits): the model is
    the hybrid "<arch>+<image_init>", `arch`'s text tower from `pretrained` and the entry's
    timm image tower from `image_checkpoint` or its file fetched into `weights_cache`
    (models.image_towers)."""
    check_architecture(arch)  # before a missing file: the architecture is the first thing wrong
    check_towers(pretrained_towers)
    if image_init:
        if set(pretrained_towers) != set(TOWERS):  # two ablations at once: the image tower would be both
            raise ValueError(
                f"model.image_init {image_init} gives the image tower its own weights; "
                f"model.pretrained_towers must then keep both towers, not {sorted(pretrained_towers)}"
            )
        from .image_towers import create_hybrid

        return create_hybrid(
            arch,
            pretrained,
            image_init,
            image_checkpoint,
            weights_cache,
            device,
            force_quick_gelu,
            precision,
            trust_checkpoint,
            cache_dir,
        )
    path = pretrained if is_checkpoint_path(pretrained) else None
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    quick_gelu = uses_quick_gelu(arch, pretrained, force_quick_gelu)
    model, train_tf, val_tf = build(arch, None if path else pretrained, quick_gelu, device, precision, cache_dir)
    if path is not None:
        load_checkpoint(model, path, arch, trust_checkpoint)
        log.info("loaded %s into %s", path, arch)
    keep_towers(model, arch, pretrained_towers, seed, quick_gelu, device, precision)
    return model, train_tf, val_tf
