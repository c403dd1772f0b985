"""Architectures open_clip can build: its own, custom ones from config/models/*.json and the
pretrained tags listed for them in config/models/pretrained_tags.yaml, and the hybrids of the
Table V initialisation ablation, "<arch>+<entry>" (`arch`'s config with the image encoder's
timm tower; remoteclip.image_encoders), registered when first named."""

from __future__ import annotations

import copy
import difflib
import json
import os
import tempfile
from pathlib import Path

import open_clip

from ..image_encoders import ImageEncoder, ImageEncoderError, buildable, hybrid_arch, image_encoder, split_hybrid

# custom architectures: config/models/ of the working directory and of this checkout, plus
# any folders listed in REMOTECLIP_MODEL_CONFIGS (os.pathsep-separated)
_CHECKOUT = Path(__file__).resolve().parents[3]
PRETRAINED_TAGS = "pretrained_tags.yaml"


class UnknownArchitecture(ValueError):
    pass


def config_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("REMOTECLIP_MODEL_CONFIGS", "").split(os.pathsep) if p]
    dirs = [Path("config/models").resolve(), _CHECKOUT / "config" / "models", *extra]
    return list(dict.fromkeys(d for d in dirs if d.is_dir()))


def register_model_configs(*folders: str | Path) -> list[str]:
    """Add every JSON in the folders to open_clip's registry, and the pretrained tags of
    their pretrained_tags.yaml; returns the architecture names added."""
    names = []
    for folder in folders or config_dirs():
        folder = Path(folder)
        if folder.is_dir():
            for path in sorted(folder.glob("*.json")):
                open_clip.add_model_config(path)
                names.append(path.stem)
            register_pretrained_tags(folder / PRETRAINED_TAGS)
    return names


def register_pretrained_tags(path: Path) -> None:
    """Pretrained tags for custom architectures, `{arch: {tag: {hf_hub: "org/repo/", ...}}}`
    (any key of open_clip's pretrained configs: url, hf_hub, quick_gelu, mean, std, ...).
    open_clip has no public call for this: the tags go into its registry dict, as its own
    pretrained.py defines them (`_PRETRAINED`, entries built by `_pcfg`)."""
    if not path.is_file():
        return
    import yaml
    from open_clip import pretrained

    tags = yaml.safe_load(path.read_text()) or {}
    if not isinstance(tags, dict) or not all(isinstance(t, dict) for t in tags.values()):
        raise ValueError(f"{path}: expected {{architecture: {{tag: {{hf_hub: ..., ...}}}}}}")
    for arch, by_tag in tags.items():
        for tag, cfg in by_tag.items():
            pretrained._PRETRAINED.setdefault(arch, {})[tag] = pretrained._pcfg(**(cfg or {}))


def check_architecture(arch: str) -> None:
    if arch.startswith("hf-hub:"):  # its config comes with its weights
        return
    known = open_clip.list_models()
    if arch not in known and register_if_hybrid(arch):  # "<arch>+<entry>": registered when first named
        return
    if arch not in known:
        close = difflib.get_close_matches(arch, known, n=5, cutoff=0.5)
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise UnknownArchitecture(
            f"unknown open_clip architecture {arch!r}{hint} (custom architectures are JSON files in config/models/)"
        )


# ------------------------------------------------ hybrids: a CLIP text tower, another image tower

_REGISTERED: dict[str, Path] = {}


def _register_timm_variants() -> None:
    """timm builds DINOv2's ViT-B/14 for 518 px; the runs feed 224 px, so a 224 px variant is
    registered (the weights' position embedding is resampled when they are loaded)."""
    from timm.models import is_model, register_model  # timm: only the hybrids need it
    from timm.models.vision_transformer import vit_base_patch14_dinov2

    if is_model("remoteclip_vit_base_patch14_dinov2_224"):
        return

    @register_model
    def remoteclip_vit_base_patch14_dinov2_224(pretrained: bool = False, **kwargs):
        return vit_base_patch14_dinov2(pretrained=pretrained, **{"img_size": 224, **kwargs})


def hybrid_config(arch: str, entry: ImageEncoder) -> dict:
    """open_clip's model config: `arch`'s text tower and embedding, the entry's timm trunk."""
    base = open_clip.get_model_config(arch)
    if base is None:
        raise ImageEncoderError(f"model.image_init: {arch} has no open_clip model config to take the text tower from")
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
    entry = buildable(image_encoder(name))
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
    """Register `name` if it is "<arch>+<entry>" of an architecture open_clip knows (an exported
    run of the initialisation ablation names its architecture so); False for any other name."""
    parts = split_hybrid(name)
    if parts is None or open_clip.get_model_config(parts[0]) is None:
        return False
    register_hybrid(parts[0], parts[1].name)
    return True
