"""A CLIP model whose image tower comes from another pretraining (paper Table V,
initialisation ablation; the entries are remoteclip.image_inits): open_clip's timm tower (the
entry's timm architecture, pooled, with a linear projection to the CLIP embedding) beside the
text tower of a CLIP architecture and its pretrained weights.

The hybrid is an open_clip architecture named "<arch>+<entry>" (image_inits.hybrid_arch),
registered on demand from `arch`'s config, so a trained run's export loads back into it like
any other architecture. Its weights: the text tower (token and positional embeddings, text
transformer, ln_final, text_projection) from `arch` with its `pretrained` weights; the trunk
from the entry's checkpoint, mapped to timm's keys (prefix stripped, heads dropped, a ViT's
position embedding resampled by timm's own checkpoint filter) and loaded strictly; the
projection and the temperature keep open_clip's initialisation (the CLIP temperature was
learnt for CLIP's image tower).
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
from pathlib import Path

import open_clip
import torch

from ..image_inits import IMAGE_INITS, ImageInit, cache_path, hybrid_arch, image_init
from ..weights import read_state_dict

log = logging.getLogger(__name__)
_REGISTERED: dict[str, Path] = {}


class ImageInitError(RuntimeError):
    """An image initialisation that cannot be built or whose checkpoint does not fit."""


def _register_timm_variants() -> None:
    """timm builds DINOv2's ViT-B/14 for 518 px; the runs feed 224 px, so a 224 px variant is
    registered (the weights' position embedding is resampled when they are loaded)."""
    from timm.models import is_model, register_model
    from timm.models.vision_transformer import vit_base_patch14_dinov2

    if is_model("remoteclip_vit_base_patch14_dinov2_224"):
        return

    @register_model
    def remoteclip_vit_base_patch14_dinov2_224(pretrained: bool = False, **kwargs):
        return vit_base_patch14_dinov2(pretrained=pretrained, **{"img_size": 224, **kwargs})


def hybrid_config(arch: str, entry: ImageInit) -> dict:
    """open_clip's model config: `arch`'s text tower and embedding, the entry's timm trunk."""
    base = open_clip.get_model_config(arch)
    if base is None:
        raise ImageInitError(f"model.image_init: {arch} has no open_clip model config to take the text tower from")
    # everything but the image tower stays `arch`'s (its text tower, embedding width, a
    # quick_gelu flag or a custom text tower), so `arch`'s text weights load as they are
    return {
        **copy.deepcopy(base),
        "vision_cfg": {
            "timm_model_name": entry.timm_model,
            "timm_model_pretrained": False,
            "timm_pool": entry.pool,
            "timm_proj": "linear",
            "image_size": 224,
        },
    }


def register_hybrid(arch: str, name: str) -> str:
    """Register "<arch>+<name>" with open_clip (once per process); returns the name."""
    entry = _buildable(image_init(name))
    hybrid = hybrid_arch(arch, name)
    if hybrid not in _REGISTERED:
        _register_timm_variants()
        folder = Path(tempfile.mkdtemp(prefix="remoteclip-hybrid-"))
        path = folder / f"{hybrid}.json"
        path.write_text(json.dumps(hybrid_config(arch, entry)))
        open_clip.add_model_config(path)  # open_clip's public call takes a file
        _REGISTERED[hybrid] = path
    return hybrid


def register_if_hybrid(name: str) -> bool:
    """Register `name` if it is "<arch>+<entry>" (an exported run of the initialisation
    ablation names its architecture so); False for any other name."""
    arch, plus, entry = name.rpartition("+")
    if not plus or entry not in IMAGE_INITS or open_clip.get_model_config(arch) is None:
        return False
    register_hybrid(arch, entry)
    return True


def _buildable(entry: ImageInit) -> ImageInit:
    if entry.unavailable:
        raise ImageInitError(f"model.image_init {entry.name} ({entry.title}): {entry.unavailable}")
    return entry


def trunk_state(entry: ImageInit, path: str | Path, trunk: torch.nn.Module, trust: bool = False) -> dict:
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


def load_trunk(trunk: torch.nn.Module, entry: ImageInit, path: str | Path, trust: bool = False) -> None:
    """Load the entry's checkpoint strictly into the timm trunk; a checkpoint of another
    network is refused with the keys that do not fit."""
    state = trunk_state(entry, path, trunk, trust)
    own = trunk.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{len(missing)} trunk keys missing (e.g. {missing[:3]})"] if missing else []
        parts += [f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})"] if unexpected else []
        parts += [f"{len(shapes)} of another shape (e.g. {sorted(shapes)[:3]})"] if shapes else []
        raise ImageInitError(
            f"{path} does not fit image_init {entry.name} ({entry.family}, timm {entry.timm_model}, "
            f"{entry.layout} key layout): " + "; ".join(parts)
        )
    trunk.load_state_dict(state, strict=True)


def checkpoint_of(entry: ImageInit, given: str | None, weights_cache: str | Path | None) -> Path:
    """The entry's checkpoint: the file the config gives, else the fetched one in the cache."""
    if given:
        path = Path(given)
        if not path.is_file():
            raise FileNotFoundError(f"model.image_checkpoint {given} does not exist")
        return path
    if weights_cache is None:
        raise ImageInitError(f"model.image_init {entry.name}: no weights cache given to find its checkpoint in")
    path = cache_path(weights_cache, entry)
    if not path.is_file():
        raise FileNotFoundError(
            f"model.image_init {entry.name}: {path} not found; the fetch_weights rule downloads it "
            f"({entry.hf_repo or entry.url}), or give model.image_checkpoint"
        )
    return path


def attach_image_tower(
    hybrid: torch.nn.Module,
    clip: torch.nn.Module,
    entry: ImageInit,
    checkpoint: str | Path,
    trust: bool = False,
) -> None:
    """Give `hybrid` the text tower of `clip` and the entry's trunk from `checkpoint`."""
    text = {k: v for k, v in clip.state_dict().items() if not k.startswith("visual.") and k != "logit_scale"}
    missing, unexpected = hybrid.load_state_dict(text, strict=False)
    wrong = [k for k in missing if not k.startswith("visual.") and k not in ("logit_scale", "logit_bias")]
    if wrong or unexpected:
        raise ImageInitError(f"text tower does not fit the hybrid: missing {wrong[:3]}, unexpected {unexpected[:3]}")
    trunk = getattr(hybrid.visual, "trunk", None)
    assert isinstance(trunk, torch.nn.Module)  # open_clip's TimmModel keeps the timm network there
    load_trunk(trunk, entry, checkpoint, trust)
    log.info("image tower %s from %s beside the text tower of the CLIP model", entry.name, checkpoint)


def create_hybrid(
    arch: str,
    pretrained: str | None,
    name: str,
    image_checkpoint: str | None = None,
    weights_cache: str | Path | None = None,
    device: str | torch.device = "cpu",
    force_quick_gelu: bool = False,
    precision: str = "fp32",
    trust_checkpoint: bool = False,
    cache_dir: str | None = None,
):
    """(model, train transform, val transform) of "<arch>+<name>" as a run starts from it: the
    text tower of `arch` with its `pretrained` weights (a tag from the cache, or a file), the
    trunk from the entry's checkpoint (`image_checkpoint`, else the fetched one in
    `weights_cache`; read with weights_only=True: `trust_checkpoint` is for `pretrained`). Checked in the order a user would fix things: the entry, then its file,
    then the fit of the weights."""
    from .factory import build, create, uses_quick_gelu

    if precision != "fp32":  # its towers come from two files: cast by autocast, not here
        raise ImageInitError(f"model.image_init: the hybrid {arch}+{name} is built in fp32 only, not {precision}")
    entry = _buildable(image_init(name))
    checkpoint = checkpoint_of(entry, image_checkpoint, weights_cache)
    hybrid = register_hybrid(arch, name)
    quick_gelu = uses_quick_gelu(arch, pretrained, force_quick_gelu)  # the text tower's, as trained
    clip, _, _ = create(
        arch, pretrained, "cpu", force_quick_gelu, trust_checkpoint=trust_checkpoint, cache_dir=cache_dir
    )
    model, train_tf, val_tf = build(hybrid, None, quick_gelu, "cpu", "fp32")
    attach_image_tower(model, clip, entry, checkpoint)
    return model.to(device), train_tf, val_tf
