"""Architectures open_clip can build: its own, plus custom ones from config/models/*.json
and the pretrained tags listed for them in config/models/pretrained_tags.yaml."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import open_clip

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
    if arch not in known and "+" in arch:  # "<arch>+<image_init>": registered when first named
        from .image_towers import register_if_hybrid

        if register_if_hybrid(arch):
            return
    if arch not in known:
        close = difflib.get_close_matches(arch, known, n=5, cutoff=0.5)
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise UnknownArchitecture(
            f"unknown open_clip architecture {arch!r}{hint} (custom architectures are JSON files in config/models/)"
        )
