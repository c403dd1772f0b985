"""Exported weights: plain state dicts that load strictly into
`open_clip.create_model_and_transforms(arch)`, like the released RemoteCLIP-*.pt."""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection
from pathlib import Path

import torch

from .configs import config_dirs


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    inner = getattr(model, "module", model)
    assert isinstance(inner, torch.nn.Module)
    return inner


def export(model: torch.nn.Module, path: str | Path, arch: str, exclude: Collection[str] = ()) -> Path:
    """Write a plain state dict (atomically); a custom architecture's JSON goes beside it.
    `exclude`: entries that only training had (SigLIP's bias added to a CLIP architecture), so
    that the file still loads strictly into `arch`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items() if k not in exclude}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    for folder in config_dirs():
        cfg = folder / f"{arch}.json"
        if cfg.is_file():  # a custom architecture travels with its weights
            shutil.copyfile(cfg, path.with_suffix(".json"))
            break
    return path
