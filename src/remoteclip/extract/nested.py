"""Archives shipped inside archives (UCM-Captions' imgs.rar, MLRSNet's one .rar per class).

Contract: `extract_in_place(archive)` reads an archive already extracted from another one,
writes its members into a folder named after it beside it (through a staging folder
`.unpacking-<name>`, always removed), then deletes the archive. Same member checks as
`safe_extract`.
"""

from __future__ import annotations

from pathlib import Path

from .formats import archive_stem
from .staging import merge, rmtree
from .unpack import safe_extract


def extract_in_place(archive: Path, *, progress: bool = False) -> Path:
    """Unpack an archive that came inside another one into a folder named after it, next to
    it, and delete it: `Images/airplane.rar` -> `Images/airplane/`. An archive whose members
    all sit in one folder of that name already (`imgs.rar` holding `imgs/...`) is not nested
    twice. The same member checks as `safe_extract` apply. Returns the folder."""
    archive = Path(archive)
    folder = archive.parent / archive_stem(archive.name)
    staging = archive.parent / f".unpacking-{archive.name}"
    rmtree(staging)
    try:
        safe_extract(archive, staging, progress=progress)
        inner = staging / folder.name
        only_folder = [p.name for p in staging.iterdir()] == [folder.name] and inner.is_dir() and not inner.is_symlink()
        folder.mkdir(exist_ok=True)
        merge(inner if only_folder else staging, folder)
    finally:
        rmtree(staging)
    archive.unlink()
    return folder
