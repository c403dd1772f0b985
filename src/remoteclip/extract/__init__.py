"""Safe extraction of dataset archives: zip, tar (plain, gz, bz2, xz), 7z and rar.

Stage: after download (`remoteclip.download` verifies the archive's checksum), before the
format parsers. Reads an archive; writes its members under a target folder and nothing
anywhere else.

Dataset archives come from third-party hosts, so every member is checked before it is
written: absolute paths, `..` components, links that lead outside the target, members
written through a symlink, and device files are refused with an error naming the archive
and the member. Members are extracted into a staging folder inside the target and only
moved into place once the whole archive has been read, so a refused, truncated or corrupt
archive leaves the target as it was.

Modules, one concern each:
    formats   which format a file is (magic bytes, then suffix); archive names
    safety    the member checks (ours: see its docstring for why not the libraries')
    readers   zipfile, tarfile (+ its `data` filter), py7zr and rarfile, one reader each
    staging   the staging folder: merge into the target, remove
    unpack    safe_extract: one archive into one folder
    nested    extract_in_place: an archive found inside an extracted archive
    errors    ExtractError and its kinds
"""

from __future__ import annotations

from .errors import CorruptArchiveError, ExtractError, MissingToolError, UnsafeArchiveError
from .formats import ARCHIVE_SUFFIXES, archive_format, archive_stem, is_archive
from .nested import extract_in_place
from .unpack import safe_extract

__all__ = [
    "ARCHIVE_SUFFIXES",
    "CorruptArchiveError",
    "ExtractError",
    "MissingToolError",
    "UnsafeArchiveError",
    "archive_format",
    "archive_stem",
    "extract_in_place",
    "is_archive",
    "safe_extract",
]
