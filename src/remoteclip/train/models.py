"""Models from open_clip's factory: any registered architecture, custom configs from
config/models/*.json, and initialisation from a pretrained tag, a local checkpoint or
random weights. Exported files are plain state dicts that load strictly into
`open_clip.create_model_and_transforms(arch)`, like the released RemoteCLIP-*.pt."""

from __future__ import annotations

import difflib
import logging
import os
import shutil
from pathlib import Path

import open_clip
import torch

from ..weight_cache import is_checkpoint_path
from ..weights import read_state_dict

log = logging.getLogger(__name__)

# custom architectures: config/models/ of the working directory and of this checkout, plus
# any folders listed in REMOTECLIP_MODEL_CONFIGS (os.pathsep-separated)
_CHECKOUT = Path(__file__).resolve().parents[3]


def config_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("REMOTECLIP_MODEL_CONFIGS", "").split(os.pathsep) if p]
    dirs = [Path("config/models").resolve(), _CHECKOUT / "config" / "models", *extra]
    return list(dict.fromkeys(d for d in dirs if d.is_dir()))


class UnknownArchitecture(ValueError):
    pass


PRETRAINED_TAGS = "pretrained_tags.yaml"


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
    if arch not in known:
        close = difflib.get_close_matches(arch, known, n=5, cutoff=0.5)
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise UnknownArchitecture(f"unknown open_clip architecture {arch!r}{hint} "
                                  f"(custom architectures are JSON files in config/models/)")


def uses_quick_gelu(arch: str, pretrained: str | None, force: bool = False) -> bool:
    """OpenAI's weights were trained with QuickGELU. open_clip 3 builds `ViT-B-32` with GELU
    even for pretrained="openai" (it only warns), so the tag's own flag decides here."""
    if force or arch.endswith("-quickgelu"):
        return True
    if pretrained and not is_checkpoint_path(pretrained):
        return bool(open_clip.get_pretrained_cfg(arch, pretrained).get("quick_gelu", False))
    return False


def create(arch: str, pretrained: str | None = None, device: str | torch.device = "cpu",
           force_quick_gelu: bool = False, precision: str = "fp32", trust_checkpoint: bool = False,
           cache_dir: str | None = None):
    """(model, train transform, val transform); `pretrained` is a tag (e.g. "openai"), a
    checkpoint path (read with weights_only=True unless `trust_checkpoint`, see
    remoteclip.weights), or None for random initialisation. A tag's weights are looked up in
    `cache_dir` (open_clip's cache_dir: the weights cache's open_clip folder)."""
    check_architecture(arch)
    is_file = is_checkpoint_path(pretrained)
    force_quick_gelu = uses_quick_gelu(arch, pretrained, force_quick_gelu)
    if is_file and not Path(pretrained).is_file():
        raise FileNotFoundError(f"checkpoint {pretrained} does not exist")
    model, train_tf, val_tf = open_clip.create_model_and_transforms(
        arch, pretrained=None if is_file else pretrained, device=device, force_quick_gelu=force_quick_gelu,
        precision=precision, cache_dir=cache_dir)
    if is_file:
        try:
            model.load_state_dict(read_state_dict(pretrained, trust_checkpoint), strict=True)
        except RuntimeError as exc:
            raise RuntimeError(f"{pretrained} does not fit architecture {arch}: {str(exc).splitlines()[0]} ...") from None
        log.info("loaded %s into %s", pretrained, arch)
    return model, train_tf, val_tf


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def export(model: torch.nn.Module, path: str | Path, arch: str) -> Path:
    """Write a plain state dict (atomically); a custom architecture's JSON goes beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    for folder in config_dirs():
        cfg = folder / f"{arch}.json"
        if cfg.is_file():  # a custom architecture travels with its weights
            shutil.copyfile(cfg, path.with_suffix(".json"))
            break
    return path
