"""CARPK (drone views of parking lots): `CARPK_devkit/data/Annotations/<image>.txt` with one
car per line, `x1 y1 x2 y2 class_id` (class 1 = car), images `CARPK_devkit/data/Images/<image>.png`
and split lists `CARPK_devkit/data/ImageSets/{train,test}.txt` naming the images.

The column order is known from third-party loaders only (datasets.md 2.10, [unverified]),
so it is the `columns` option (see `columns.py`). Without split lists every annotation file
is read as "train".

Rule `parse` (DET): one `ImageRecord` per listed image, its boxes read by the `columns`, class
ids mapped by `classes` ({1: car}).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..imageio import IMAGE_EXTENSIONS
from .base import FormatError, ImageRecord, SkipLog
from .columns import BoxColumns
from .common import expand, image_index, read_list, text_label_record
from .labels import Labeler

DEFAULTS = {
    "splits": ["train"],
    "split_lists": "CARPK_devkit/data/ImageSets/{split}.txt",
    "annotations": "CARPK_devkit/data/Annotations/{name}.txt",
    "images": "CARPK_devkit/data/Images",
    "columns": ["xmin", "ymin", "xmax", "ymax", "class"],
    "classes": {1: "car"},
}


def image_stem(listed: str) -> str:
    """The stem of a split-list entry, which may or may not carry the image extension."""
    path = Path(listed)
    return path.stem if path.suffix.lower() in IMAGE_EXTENSIONS else listed


def listed_images(root: Path, opts: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(split, image stem) in split-list order, or every annotation file as "train"."""
    if not opts["split_lists"]:
        for path in expand(root, opts["annotations"], name="*", split="train"):
            yield "train", path.stem
        return
    for split in opts["splits"]:
        for listed in read_list(root / opts["split_lists"].format(split=split)):
            yield split, image_stem(listed)


def parse(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[ImageRecord]:
    opts = {**DEFAULTS, **options}
    line_box = BoxColumns(opts["columns"], opts["classes"]).line_box(Labeler(opts))
    images = image_index(root, opts["images"])
    for split, stem in listed_images(root, opts):
        label = root / opts["annotations"].format(name=stem, split=split)
        image = images.get(stem)
        if not label.is_file():
            skips.skip(FormatError(label, f"annotation file for image {stem!r} ({split}) missing"), "image")
            continue
        if image is None:
            skips.skip(FormatError(label, f"no image named {stem!r}"), "image")
            continue
        record = text_label_record(root, label, image, split, line_box, skips)
        if record is not None:
            yield record
