"""DOTA v1.0/v1.5 labels: one `.txt` per image, `x1 y1 ... x4 y4 class difficult` per line,
optionally after the header lines `imagesource:...` and `gsd:...`. Oriented polygons
become their horizontal bounding boxes (min/max of the four vertices).

Rule `parse` (DET): one `ImageRecord` per label file of each configured split
(`{split}/labelTxt/*.txt`, matched by stem to an image in `{split}/images`), `difficult` kept on
the box (`skip_difficult` drops such objects). A COUNT benchmark in DOTA layout (RemoteCount) is
read by the same parser for `eval_split` and `hash_test_split`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import Box, FormatError, ImageRecord, SkipLog
from .common import clip_box, text_label_records
from .labels import Labeler

DEFAULTS = {
    "splits": ["train"],
    "labels": "{split}/labelTxt/*.txt",
    "images": "{split}/images",
    "skip_difficult": False,
}
_HEADER_KEYS = ("imagesource", "gsd")


def parse_line(text: str, path: Path, line: int) -> tuple[list[float], str, bool] | None:
    """(8 coordinates, raw class, difficult) or None for a header/blank line."""
    text = text.strip()
    if not text or text.split(":", 1)[0].lower() in _HEADER_KEYS:
        return None
    parts = text.split()
    if len(parts) < 9:
        raise FormatError(path, f"expected 8 coordinates, a class and a difficult flag, got {len(parts)} fields", line)
    try:
        coords = [float(v) for v in parts[:8]]
    except ValueError:
        raise FormatError(path, f"non-numeric coordinate in {' '.join(parts[:8])!r}", line) from None
    difficult = parts[9] if len(parts) > 9 else "0"
    if difficult not in ("0", "1"):
        raise FormatError(path, f"difficult flag must be 0 or 1, got {difficult!r}", line)
    return coords, parts[8], difficult == "1"


def parse(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[ImageRecord]:
    opts = {**DEFAULTS, **options}
    labeler = Labeler(opts)

    def line_box(text: str, label_path: Path, number: int, width: int, height: int) -> Box | None:
        parsed = parse_line(text, label_path, number)
        if parsed is None:
            return None
        coords, raw, difficult = parsed
        category = labeler(raw)
        if category is None or (difficult and opts["skip_difficult"]):
            return None
        xs, ys = coords[0::2], coords[1::2]
        return clip_box(min(xs), min(ys), max(xs), max(ys), width, height, category, label_path, number, difficult)

    yield from text_label_records(root, opts, line_box, skips)
