"""On-disk conventions shared by every download step, and the settings of a transfer.

A file being transferred is `<name>.part` beside its final path and is renamed only once
it is complete (and verified); wrong bytes are kept aside as `<name>.bad`; a file from a
cache is hard-linked (copied across file systems); JSON markers are written atomically.
Reads and writes only the paths it is given.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

CHUNK = 1 << 20


@dataclass(frozen=True)
class Options:
    """How a transfer behaves; `retries` and `backoff` are documented on `fetch_file`."""

    retries: int = 5
    backoff: float = 1.0
    timeout: float = 60.0
    progress: bool = True


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def dest_of(part: Path) -> Path:
    return part.with_name(part.name.removesuffix(".part"))


def bad_path(path: Path) -> Path:
    return path.with_name(path.name + ".bad")


def keep_aside(path: Path) -> Path:
    """Move a wrong file to `<name>.bad` for inspection; returns where it went."""
    kept = bad_path(path)
    os.replace(path, kept)
    return kept


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link the cached blob (no extra disk space) or copy it across file systems."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def write_json(path: Path, doc: dict) -> Path:
    """Write `doc` to `path` through a temporary file, so readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def progress_bar(total: int | None, initial: int, desc: str, progress: bool) -> tqdm:
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not progress,
        leave=False,
    )
