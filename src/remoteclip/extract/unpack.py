"""`safe_extract`: one archive into one folder, every member checked first.

Contract: reads `archive` (format from its first bytes, readers.py), writes its members
under `target` through a staging folder `target/.extracting-<name>` that is always removed
(staging.py). Existing files of the same name are replaced; nothing is written outside
`target`, and a refused or corrupt archive leaves `target` as it was.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from .formats import archive_format
from .readers import READERS
from .safety import Checker, check_extracted_links
from .staging import make_dirs_writable, merge, rmtree


def safe_extract(archive: Path, target: Path, *, progress: bool = False) -> list[Path]:
    """Extract `archive` into `target` after checking every member; return the member
    paths under `target` in archive order. Existing files of the same name are replaced.
    `progress` shows a tqdm counter of members."""
    archive, target = Path(archive), Path(target)
    reader = READERS[archive_format(archive)]
    target.mkdir(parents=True, exist_ok=True)
    staging = target / f".extracting-{archive.name}"
    rmtree(staging)
    staging.mkdir()
    bar = tqdm(desc=f"extract {archive.name}", unit=" files", disable=not progress, leave=False)
    try:
        checker = Checker(archive, bar)
        reader(archive, staging, checker)
        check_extracted_links(archive, staging)
        make_dirs_writable(staging)
        merge(staging, target)
    finally:
        bar.close()
        rmtree(staging)
    return [target / name for name in checker.names]
