"""Reading weight files safely: the one place where checkpoints are unpickled.

`torch.load(..., weights_only=False)` on a downloaded file runs whatever code its pickle
names. Every checkpoint is therefore read with `weights_only=True`, which admits tensors and
plain containers (dicts, lists, numbers, strings) and refuses anything else with the names of
the objects it met. That covers the layouts released CLIP weights come in: plain state dicts
(the released RemoteCLIP-*.pt, our exports), open_clip_train checkpoints ({"epoch", "name",
"state_dict", "optimizer", "scaler"}, keys prefixed "module." under DDP) and ITRA's (the same
shape). `.safetensors` files hold tensors only and are read by safetensors. A file that needs
more must be trusted by name in the config (`trust_checkpoint: true`), never by default.

No stage of its own: the `train` job (a `pretrained` checkpoint path, its resume checkpoints)
and the `features` job (released and user checkpoints) read every checkpoint file through here;
only open_clip's own pretrained tags are loaded by open_clip.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

TRUST_HINT = "trust_checkpoint: true"


class CheckpointError(ValueError):
    """A weight file that cannot be read safely, or that holds no state dict; names the file."""


def load_file(path: str | Path, trust: bool = False, what: str = "checkpoint") -> Any:
    """The object in a weight file, unpickled with weights_only=True unless `trust`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file as load_safetensors

        return load_safetensors(str(path), device="cpu")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{what} {path}: refused: it holds pickled objects other than tensors and plain "
            f"containers ({_unsafe_names(path, exc)}), and unpickling them can run arbitrary "
            f"code. If you trust this file, say so for this model in the config "
            f"({TRUST_HINT}); or re-save its tensors as a plain state dict"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{what} {path}: not a readable torch checkpoint (truncated or corrupt?): {str(exc).splitlines()[0]}"
        ) from None


def _unsafe_names(path: Path, exc: Exception) -> str:
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # an old-format (non-zip) file: torch's own message names the global
        return str(exc).splitlines()[-1].strip() or type(exc).__name__
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "") if names else "unknown"


def state_dict_of(obj: Any, path: str | Path) -> dict[str, torch.Tensor]:
    """The model state dict inside a checkpoint object: plain, or under "state_dict"/"model"
    (open_clip_train, ITRA), with a DDP "module." prefix removed."""
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        found = f"a dict with keys {sorted(map(str, obj))[:5]}" if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"checkpoint {path}: holds no state dict (found {found})")
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"checkpoint {path}: {len(not_tensors)} entries are not tensors "
            f"(e.g. {not_tensors[:3]}): not a model state dict"
        )
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def read_state_dict(path: str | Path, trust: bool = False) -> dict[str, torch.Tensor]:
    """A model state dict from any supported checkpoint file, read safely (see module doc)."""
    return state_dict_of(load_file(path, trust), path)
