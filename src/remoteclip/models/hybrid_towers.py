"""The weights of a hybrid CLIP model (paper Table V, initialisation ablation; the entries are
remoteclip.image_encoders): open_clip's timm tower (the entry's timm architecture, pooled, with
a linear projection to the CLIP embedding) beside the text tower of a CLIP architecture and its
pretrained weights. The architecture "<arch>+<entry>" is registered by `models.configs` and
built by `models.factory.create`; this module gives it its weights: the text tower (token and
positional embeddings, text transformer, ln_final, text_projection) from `arch` with its
`pretrained` weights; the trunk from the entry's checkpoint, mapped to timm's keys (prefix
stripped, heads dropped, a ViT's position embedding resampled by timm's own checkpoint filter)
and loaded strictly; the projection and the temperature keep open_clip's initialisation (the
CLIP temperature was learnt for CLIP's image tower).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..image_encoders import ImageEncoder, ImageEncoderError
from ..weights.cache import image_encoder_path
from ..weights.files import read_state_dict
from .state import load_strict

log = logging.getLogger(__name__)


def trunk_state(entry: ImageEncoder, path: str | Path, trunk: torch.nn.Module, trust: bool = False) -> dict:
    """The checkpoint's tensors under the trunk's timm keys."""
    state = read_state_dict(path, trust)
    if entry.strip:
        state = {k[len(entry.strip) :] if k.startswith(entry.strip) else k: v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(entry.drop)} if entry.drop else state
    if entry.timm_model.startswith(("vit_", "remoteclip_vit_")) and "pos_embed" in state:
        from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

        assert isinstance(trunk, VisionTransformer)  # a ViT entry's trunk is timm's ViT
        state = checkpoint_filter_fn(state, trunk)  # resamples the position embedding to 224 px
    return state


def load_trunk(trunk: torch.nn.Module, entry: ImageEncoder, path: str | Path, trust: bool = False) -> None:
    """Load the entry's checkpoint strictly into the timm trunk; a checkpoint of another
    network is refused with the keys that do not fit."""
    what = f"{path} as image_init {entry.name} ({entry.family}, timm {entry.timm_model}, {entry.layout} key layout)"
    load_strict(trunk, trunk_state(entry, path, trunk, trust), what)


def checkpoint_of(entry: ImageEncoder, given: str | None, weights_cache: str | Path | None) -> Path:
    """The entry's checkpoint: the file the config gives, else the fetched one in the cache."""
    if given:
        path = Path(given)
        if not path.is_file():
            raise FileNotFoundError(f"model.image_checkpoint {given} does not exist")
        return path
    if weights_cache is None:
        raise ImageEncoderError(f"model.image_init {entry.name}: no weights cache given to find its checkpoint in")
    path = image_encoder_path(weights_cache, entry)
    if not path.is_file():
        raise FileNotFoundError(
            f"model.image_init {entry.name}: {path} not found; the fetch_weights rule downloads it "
            f"({entry.hf_repo or entry.url}), or give model.image_checkpoint"
        )
    return path


def attach_image_tower(
    hybrid: torch.nn.Module,
    clip: torch.nn.Module,
    entry: ImageEncoder,
    checkpoint: str | Path,
    trust: bool = False,
) -> None:
    """Give `hybrid` the text tower of `clip` and the entry's trunk from `checkpoint`."""
    text = {k: v for k, v in clip.state_dict().items() if not k.startswith("visual.") and k != "logit_scale"}
    missing, unexpected = hybrid.load_state_dict(text, strict=False)
    wrong = [k for k in missing if not k.startswith("visual.") and k not in ("logit_scale", "logit_bias")]
    if wrong or unexpected:
        raise ImageEncoderError(f"text tower does not fit the hybrid: missing {wrong[:3]}, unexpected {unexpected[:3]}")
    trunk = getattr(hybrid.visual, "trunk", None)
    assert isinstance(trunk, torch.nn.Module)  # open_clip's TimmModel keeps the timm network there
    load_trunk(trunk, entry, checkpoint, trust)
    log.info("image tower %s from %s beside the text tower of the CLIP model", entry.name, checkpoint)
