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
and the feature jobs (released, zoo and user checkpoints) read every checkpoint file through
here; only open_clip's own pretrained tags are loaded by open_clip. A release that is a zip
archive (SkyCLIP) has its checkpoint taken out here too (`extract_member`), by the fetch and,
for an archive placed by hand, by the loader, so scoring never imports download code.
"""

from __future__ import annotations

import os
import pickle
import zipfile
import zlib
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


SHOWN_MEMBERS = 10  # archive members named when the declared one is not among them


def extract_member(archive: Path, member: str, target: Path) -> Path:
    """The zip `archive`'s `member`, extracted to `target` (the cache's `member_path`; once: an
    extracted file is reused when it has the member's size and CRC). Only that member is read,
    so an archive with other files (logs, optimizer states) costs nothing more; a member that is
    absent is an error naming the members the archive has."""
    try:
        with zipfile.ZipFile(archive) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                names = [n for n in zf.namelist() if not n.endswith("/")]
                shown = ", ".join(names[:SHOWN_MEMBERS]) + (" ..." if len(names) > SHOWN_MEMBERS else "")
                raise CheckpointError(
                    f"{archive}: the zip has no member {member!r} (weights.member of the zoo entry); "
                    f"it has {len(names)} file(s): {shown or 'none'}"
                ) from None
            if target.is_file() and target.stat().st_size == info.file_size and _crc32(target) == info.CRC:
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            with zf.open(info) as src, open(part, "wb") as out:  # zipfile checks the CRC at the end
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            os.replace(part, target)
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{archive}: not a zip archive ({exc}), but the zoo entry names a member in it") from None
    return target


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc
