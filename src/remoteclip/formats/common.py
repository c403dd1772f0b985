"""Helpers shared by parsers: text reading, file discovery, box clipping."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from ..imageio import IMAGE_EXTENSIONS
from .base import Box, FormatError


def read_lines(path: Path) -> list[str]:
    """Lines without BOM and \\r; FormatError when the file cannot be decoded."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"not UTF-8 text ({exc})") from None
    return text.replace("\r", "").split("\n")


def expand(root: Path, patterns: str | Iterable[str], **fields: str) -> list[Path]:
    """Sorted files matching glob patterns relative to `root` (after `{field}` substitution)."""
    if isinstance(patterns, str):
        patterns = [patterns]
    found: set[Path] = set()
    for pattern in patterns:
        found.update(Path(p) for p in glob.glob(str(root / pattern.format(**fields)), recursive=True))
    return sorted(p for p in found if p.is_file())


def image_index(root: Path, folders: str | Iterable[str], **fields: str) -> dict[str, Path]:
    """Map image stem and file name -> path over the given image folders (globs allowed)."""
    if isinstance(folders, str):
        folders = [folders]
    index: dict[str, Path] = {}
    for folder in folders:
        for directory in sorted(glob.glob(str(root / folder.format(**fields)))):
            for path in sorted(Path(directory).iterdir()):
                if path.suffix.lower() in IMAGE_EXTENSIONS:
                    index.setdefault(path.name, path)
                    index.setdefault(path.stem, path)
    return index


def clip_box(x0: float, y0: float, x1: float, y1: float, width: int, height: int, category: str,
             path: Path, line: int | None = None, difficult: bool = False) -> Box:
    """Clip a corner box to the image; FormatError when nothing is left of it."""
    cx0, cy0 = min(max(x0, 0.0), width), min(max(y0, 0.0), height)
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    if x1 < x0 or y1 < y0:
        raise FormatError(path, f"box has negative size ({x0}, {y0}, {x1}, {y1})", line)
    if cx1 <= cx0 or cy1 <= cy0:
        raise FormatError(path, f"box ({x0}, {y0}, {x1}, {y1}) lies outside the {width}x{height} image", line)
    return Box(cx0, cy0, cx1 - cx0, cy1 - cy0, category, difficult)
