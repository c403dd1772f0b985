"""LEVIR object detection (Zou & Shi 2017; not LEVIR-CD): one `.txt` per image, one box per
line, classes 1 plane, 2 ship, 3 oil tank.

UNVERIFIED FORMAT (datasets.md 2.5: [unverified] throughout). No source available to this
project shows a real LEVIR label file or the archive layout. The believed line layout is
`class_id xmin ymin xmax ymax`, whitespace-separated. Everything that guess touches is an
option, so checking one real file and fixing the catalogue entry is enough:
- `columns`: the column order (`class`, `xmin ymin xmax ymax` or `left top width height`,
  `-` for a column to ignore; see `columns.py`);
- `separator`: null for whitespace, or e.g. ",";
- `classes`: class id -> name; null when the class column holds names;
- `labels`, `images`: where the files lie (images are matched to labels by stem; point
  both at one folder when they lie side by side).

Rule `parse` (DET): one `ImageRecord` per label file, matched by stem to an image.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import ImageRecord, SkipLog
from .columns import BoxColumns
from .common import text_label_records
from .labels import Labeler

DEFAULTS = {
    "splits": ["train"],
    "labels": "labels/*.txt",
    "images": ["images"],
    "columns": ["class", "xmin", "ymin", "xmax", "ymax"],
    "separator": None,
    "classes": {1: "plane", 2: "ship", 3: "oil tank"},
}


def parse(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[ImageRecord]:
    opts = {**DEFAULTS, **options}
    line_box = BoxColumns(opts["columns"], opts["classes"], opts["separator"]).line_box(Labeler(opts))
    yield from text_label_records(root, opts, line_box, skips)
