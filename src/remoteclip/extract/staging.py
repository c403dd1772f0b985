"""The staging folder: members are extracted into a hidden folder inside the target and
moved into place only once the whole archive has been read and checked, so a refused,
truncated or corrupt archive leaves the target as it was.

Reads and writes only the staging folder and the target it is merged into."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path


def merge(src: Path, dst: Path) -> None:
    """Move the staged tree into `dst`; whole folders move in one rename where possible."""
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        out = dst / entry.name
        if entry.is_dir(follow_symlinks=False) and out.is_dir() and not out.is_symlink():
            merge(Path(entry.path), out)
            continue
        _remove_path(out)
        os.replace(entry.path, out)


def rmtree(path: Path) -> None:
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        make_dirs_writable(path)
        shutil.rmtree(path)


def make_dirs_writable(root: Path) -> None:
    # Archives may hold read-only folders; moving or deleting their contents needs u+rwx.
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | stat.S_IRWXU)


def _remove_path(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        rmtree(path)
