"""Scene-classification trees: one folder per class (AID, RESISC45, ...), or two levels
(RSI-CB: super-class/class). Files are listed sorted, so splits built on top are stable.

Not a `parse` format (CLS datasets are benchmarks, not pretraining sources): `scan` gives
{class folder: [image paths relative to the root]}, which the `eval_split` rule
(results/splits/{benchmark}.json) and the `hash_test_split` rule (the test images the leak filter
protects) split per class by file name (`splits.filename_split`).
"""

from __future__ import annotations

from pathlib import Path

from ..imageio import IMAGE_EXTENSIONS
from .base import FormatError

DEFAULTS = {"depth": 1, "path": "."}  # the class tree may sit in a sub-folder of the root


def scan(root: Path, depth: int = 1, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> dict[str, list[str]]:
    """{class folder name: [image paths relative to root, sorted]}; the class is the
    folder at `depth` below the root."""
    root = Path(root)
    if not root.is_dir():
        raise FormatError(root, "class-folder root does not exist")
    pattern = "/".join(["*"] * depth)
    classes: dict[str, list[str]] = {}
    for folder in sorted(p for p in root.glob(pattern) if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            str(f.relative_to(root)) for f in folder.iterdir() if f.is_file() and f.suffix.lower() in extensions
        )
        if files:
            classes.setdefault(folder.name, []).extend(files)
    if not classes:
        raise FormatError(root, f"no class folders with images found at depth {depth}")
    return classes
