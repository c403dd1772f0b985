"""Install verified archives into a dataset folder, and the `.verified` marker that says so.

Contract: `install(spec, archive, root)` reads one verified file from the archives folder
and writes it under `root` (or `root/<subdir>`): archives are extracted with
`remoteclip.extract` (and archives inside them, where the spec's `nested` globs name
them, are unpacked each into a folder named after it); other files are hard-linked or
copied. `write_marker` writes `root/.verified` last, listing each file's digests;
`marker_is_current` tells whether an existing marker still describes the catalogue entry
(same files, layout and published checksums), which makes a rerun a no-op.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..extract import ExtractError, extract_in_place, is_archive, safe_extract
from .checksums import expected_digests
from .files import link_or_copy, write_json
from .specs import FileSpec

log = logging.getLogger(__name__)

VERIFIED_MARKER = ".verified"


def install(spec: FileSpec, archive: Path, root: Path, progress: bool) -> None:
    target = root / spec.subdir if spec.subdir else root
    if spec.extract:
        safe_extract(archive, target, progress=progress)
        for pattern in spec.nested:
            _unpack_nested(spec, target, pattern, progress)
        return
    target.mkdir(parents=True, exist_ok=True)
    out = target / spec.name
    out.unlink(missing_ok=True)
    link_or_copy(archive, out)


def _unpack_nested(spec: FileSpec, target: Path, pattern: str, progress: bool) -> None:
    """Archives shipped inside the archive (UCM-Captions' imgs.rar, MLRSNet's one .rar per
    category) are unpacked too, each into a folder named after it."""
    found = sorted(p for p in target.glob(pattern) if p.is_file() and is_archive(p.name))
    if not found:
        raise ExtractError(
            f"{spec.name}: no archive matches the catalogue's nested pattern {pattern!r} "
            f"under {target} after extraction; the archive's layout differs from the catalogue"
        )
    for inner in tqdm(found, desc=f"unpack {pattern}", unit=" archives", disable=not progress or len(found) < 2):
        log.info("%s: unpacking %s", spec.name, inner.relative_to(target))
        extract_in_place(inner, progress=progress)


def marker_is_current(marker: Path, specs: list[FileSpec]) -> bool:
    try:
        recorded = json.loads(marker.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if [r.get("name") for r in recorded] != [s.name for s in specs]:
        return False
    return all(record_matches(r, s) for r, s in zip(recorded, specs))


def record_matches(record: dict, spec: FileSpec) -> bool:
    if (record.get("subdir"), record.get("extract"), record.get("nested", [])) != (
        spec.subdir,
        spec.extract,
        list(spec.nested),
    ):
        return False
    published = expected_digests(spec.md5, spec.sha256, "catalogue").digests
    return all(record.get(algorithm) == value for algorithm, value in published.items())


def write_marker(marker: Path, dataset: str, records: list[dict[str, Any]]) -> None:
    write_json(marker, {"dataset": dataset, "files": records})
