"""VisDrone2019-DET: `VisDrone2019-DET-{split}/annotations/<image>.txt` beside `images/<image>.jpg`,
one box per line, comma-separated:

    <bbox_left>,<bbox_top>,<bbox_width>,<bbox_height>,<score>,<object_category>,<truncation>,<occlusion>

Some lines end with a trailing comma. In the ground truth `score` 0 marks a box the
benchmark ignores; category 0 is an ignored region and 11 "others"; both are dropped by
default. Split names are the folder suffixes: train, val, test-dev, test-challenge.

Rule `parse` (DET): one `ImageRecord` per annotation file of each split, matched by stem to an
image in `images/`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import Box, FormatError, ImageRecord, SkipLog
from .common import LineBox, clip_box, split_fields, text_label_records, to_integers, to_numbers
from .labels import Labeler

CATEGORIES = {
    0: "ignored regions",
    1: "pedestrian",
    2: "people",
    3: "bicycle",
    4: "car",
    5: "van",
    6: "truck",
    7: "tricycle",
    8: "awning-tricycle",
    9: "bus",
    10: "motor",
    11: "others",
}
FIELDS = 8

DEFAULTS = {
    "splits": ["train"],
    "labels": "VisDrone2019-DET-{split}/annotations/*.txt",
    "images": "VisDrone2019-DET-{split}/images",
    "categories": CATEGORIES,
    # ids, not names, so a user's `ignore_classes` does not bring the ignored regions back
    "drop_categories": [0, 11],
    "skip_zero_score": True,
}


def parse_line(text: str, path: Path, line: int) -> tuple[list[float], int, int] | None:
    """(left, top, width, height), score, category; None for a blank line."""
    fields = split_fields(text, FIELDS, path, line, separator=",")
    if fields is None:
        return None
    box = to_numbers(fields[:4], path, line)
    score, category, _truncation, _occlusion = to_integers(fields[4:], path, line)
    return box, score, category


def line_reader(opts: dict[str, Any]) -> LineBox:
    labeler = Labeler(opts)
    names = {int(k): str(v) for k, v in opts["categories"].items()}
    dropped = {int(c) for c in opts["drop_categories"] or []}

    def box(text: str, path: Path, line: int, width: int, height: int) -> Box | None:
        parsed = parse_line(text, path, line)
        if parsed is None:
            return None
        (left, top, w, h), score, category_id = parsed
        if category_id in dropped or (score == 0 and opts["skip_zero_score"]):
            return None
        if category_id not in names:
            raise FormatError(path, f"unknown object category {category_id} (known: {sorted(names)})", line)
        category = labeler(names[category_id])
        if category is None:
            return None
        return clip_box(left, top, left + w, top + h, width, height, category, path, line)

    return box


def parse(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[ImageRecord]:
    opts = {**DEFAULTS, **options}
    line_box = line_reader(opts)
    yield from text_label_records(root, opts, line_box, skips)
