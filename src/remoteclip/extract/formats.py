"""Which archive format a file is: from its first bytes, else from its name.

Reads at most the first 512 bytes of an archive; writes nothing."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ExtractError

ARCHIVE_SUFFIXES = {
    ".zip": "zip",
    ".tar": "tar",
    ".tar.gz": "tar",
    ".tgz": "tar",
    ".tar.bz2": "tar",
    ".tbz2": "tar",
    ".tbz": "tar",
    ".tar.xz": "tar",
    ".txz": "tar",
    ".7z": "7z",
    ".rar": "rar",
}

# Content beats the file name: hosts often serve archives under misleading names.
_MAGIC = (
    (0, b"PK\x03\x04", "zip"),
    (0, b"PK\x05\x06", "zip"),
    (0, b"7z\xbc\xaf\x27\x1c", "7z"),
    (0, b"Rar!\x1a\x07", "rar"),
    (0, b"\x1f\x8b", "tar"),
    (0, b"BZh", "tar"),
    (0, b"\xfd7zXZ\x00", "tar"),
    (257, b"ustar", "tar"),
)

# longest first, so a compound suffix wins over a shorter suffix it ends with
_SUFFIXES_LONGEST_FIRST = sorted(ARCHIVE_SUFFIXES, key=len, reverse=True)


def is_archive(name: str | os.PathLike) -> bool:
    """Whether a file name has one of the archive suffixes `safe_extract` reads."""
    return _format_from_name(str(name)) is not None


def archive_format(archive: Path) -> str:
    """'zip', 'tar', '7z' or 'rar', from the file's first bytes, else from its name."""
    archive = Path(archive)
    if not archive.is_file():
        raise ExtractError(f"{archive}: archive not found")
    with open(archive, "rb") as fh:
        head = fh.read(512)
    for offset, magic, fmt in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return fmt
    by_name = _format_from_name(archive.name)
    if by_name is None:
        known = ", ".join(sorted(ARCHIVE_SUFFIXES))
        raise ExtractError(f"{archive}: not a recognised archive (known suffixes: {known})")
    return by_name


def archive_stem(name: str) -> str:
    """The name without its archive suffix: `imgs.rar` -> `imgs`, `a.tar.gz` -> `a`."""
    suffix = _archive_suffix(name)
    return name[: -len(suffix)] if suffix and len(name) > len(suffix) else name


def _format_from_name(name: str) -> str | None:
    suffix = _archive_suffix(name)
    return ARCHIVE_SUFFIXES[suffix] if suffix else None


def _archive_suffix(name: str) -> str | None:
    lower = name.lower()
    return next((suffix for suffix in _SUFFIXES_LONGEST_FIRST if lower.endswith(suffix)), None)
