"""Atomic checkpoints and automatic resume from the newest complete one."""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from ..weights.files import load_file

log = logging.getLogger(__name__)
_NAME = re.compile(r"ckpt-(\d{8})\.pt$")


class CheckpointMismatch(RuntimeError):
    """A resume checkpoint that lacks what the run's recipe trains."""


def rng_state() -> dict:
    """Every generator's state in types weights_only loading admits (tensors, ints, strings)."""
    legacy = np.random.get_state()
    assert isinstance(legacy, tuple)  # the legacy (kind, keys, pos, has_gauss, gauss) form
    kind, keys, pos, has_gauss, gauss = legacy
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_tuples(state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value):
    """random.setstate wants the tuples getstate gave (a round trip may turn them into lists)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


# Resume checkpoints written before the numpy state was stored as a tensor hold a numpy
# array; these are the only objects beyond tensors and containers they need.
_LEGACY_NUMPY = [np.ndarray, np.dtype, type(np.dtype(np.uint32)), np._core.multiarray._reconstruct]  # type: ignore[attr-defined]


def load(path: Path) -> dict:
    """A resume checkpoint, read with weights_only=True (plus the legacy numpy allow-list)."""
    with torch.serialization.safe_globals(_LEGACY_NUMPY):
        return load_file(path, what="resume checkpoint")


def save(folder: Path, step: int, payload: dict, keep: int) -> Path:
    """Write ckpt-<step>.pt through a temporary file and rename; keep the newest `keep`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ckpt-{step:08d}.pt"
    tmp = folder / f".ckpt-{step:08d}.pt.tmp"
    torch.save(payload, tmp)
    os.replace(tmp, path)
    for old in sorted(complete(folder))[:-keep] if keep > 0 else []:
        old.unlink()
    return path


def complete(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("ckpt-*.pt") if _NAME.search(p.name))


def choose(folder: Path, fingerprint: str) -> tuple[Path, dict] | None:
    """The newest checkpoint of this recipe and its state; checkpoints of another recipe are
    moved aside. It moves files, so one process alone may choose for a folder (see loop.resume)."""
    paths = complete(folder) if folder.is_dir() else []
    if not paths:
        return None
    state = load(paths[-1])
    if state.get("fingerprint") != fingerprint:
        stale = folder / f"stale-{state.get('fingerprint', 'unknown')}"
        stale.mkdir(exist_ok=True)
        for p in paths:
            shutil.move(str(p), stale / p.name)
        log.warning(
            "checkpoints in %s belong to another recipe or other shards; moved to %s, starting fresh", folder, stale
        )
        return None
    log.info("resuming from %s (step %d)", paths[-1], state["step"])
    return paths[-1], state


def newest(folder: Path, fingerprint: str) -> dict | None:
    """The state of the newest checkpoint of this recipe (one process; see `choose`)."""
    chosen = choose(folder, fingerprint)
    return chosen[1] if chosen else None
