"""The unified annotation file between parsing and B2C: COCO detection JSON.

Images carry `file_name` relative to the dataset's raw root, `width`/`height` of the
image or of its tile, `split`, and `crop` [x, y, w, h] when the record is a tile of a
larger file. Categories are canonical lower-case names, numbered in sorted order.
pycocotools loads it as is.

Written by the `parse` rule (results/annotations/{dataset}.json), read by the `b2c` rule,
both one record at a time, so memory does not grow with the number of images:

- `RecordSpool` takes the parser's records one by one into a spool file beside the output
  (the category numbers depend on every record's boxes, so the file is written in a second
  pass), counts what the report needs, and `write_coco` writes the COCO file from the spool
  element by element, in exactly the bytes `json.dumps(coco, ensure_ascii=False)` gives for
  the whole dict (what the stage wrote before it streamed);
- `iter_records` reads it back through `remoteclip.jsonstream`, images and their
  annotations side by side.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from .errors import FormatError
from .formats.base import Box, ImageRecord
from .jsonstream import last_value, top_level_items, top_level_values

DESCRIPTION = "remoteclip unified annotations"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class RecordSpool:
    """The parse stage's records on disk, one JSON line each, with the counts of the report.

    `distinct_files` counts a file name that differs from the previous record's: parsers yield
    the tiles of one file together, so this is the number of distinct image files without a
    set of every name."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: TextIO | None = open(self.path, "w", encoding="utf-8")
        self.images = 0
        self.boxes_per_category: Counter[str] = Counter()
        self.distinct_files = 0
        self._last_file: str | None = None

    def add(self, record: ImageRecord) -> None:
        assert self._fh is not None, "the spool is closed"
        self._fh.write(_dumps(spool_row(record)) + "\n")
        self.images += 1
        self.boxes_per_category.update(b.category for b in record.boxes)
        if record.file_name != self._last_file:
            self.distinct_files += 1
            self._last_file = record.file_name

    @property
    def boxes(self) -> int:
        return sum(self.boxes_per_category.values())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def _rows(self) -> Iterator[list]:
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)

    def write_coco(self, out: str | Path, dataset: str) -> None:
        """The COCO file from the spool, through a temporary file renamed into place."""
        self.close()
        names = sorted(self.boxes_per_category)
        ids = {n: i + 1 for i, n in enumerate(names)}
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write('{"info": ' + _dumps({"dataset": dataset, "description": DESCRIPTION}) + ', "images": [')
            for image_id, row in enumerate(self._rows(), 1):
                fh.write((", " if image_id > 1 else "") + _dumps(_coco_image(image_id, row)))
            fh.write('], "annotations": [')
            annotation_id = 0
            for image_id, row in enumerate(self._rows(), 1):
                for box in row[5]:
                    annotation_id += 1
                    fh.write(
                        (", " if annotation_id > 1 else "")
                        + _dumps(_coco_annotation(annotation_id, image_id, box, ids))
                    )
            categories = [{"id": ids[n], "name": n, "supercategory": "object"} for n in names]
            fh.write('], "categories": ' + _dumps(categories) + "}\n")
        os.replace(tmp, out)


def spool_row(record: ImageRecord) -> list:
    """A record as the spool holds it: [file, width, height, split, crop, [[x, y, w, h, class,
    difficult], ...]] (the parse stage's units are written the same way)."""
    boxes = [[float(b.x), float(b.y), float(b.w), float(b.h), b.category, bool(b.difficult)] for b in record.boxes]
    crop = list(record.crop) if record.crop is not None else None
    return [record.file_name, record.width, record.height, record.split, crop, boxes]


def record_of_row(row: list) -> ImageRecord:
    file_name, width, height, split, crop, boxes = row
    return ImageRecord(
        file_name,
        width,
        height,
        [Box(x, y, w, h, category, difficult) for x, y, w, h, category, difficult in boxes],
        split,
        tuple(crop) if crop is not None else None,
    )


def _coco_image(image_id: int, row: list) -> dict:
    file_name, width, height, split, crop, _ = row
    entry = {"id": image_id, "file_name": file_name, "width": width, "height": height, "split": split}
    if crop is not None:
        entry["crop"] = crop
    return entry


def _coco_annotation(annotation_id: int, image_id: int, box: list, ids: dict[str, int]) -> dict:
    *xywh, category, difficult = box
    bbox = [round(float(v), 2) for v in xywh]
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": ids[category],
        "bbox": bbox,
        "area": round(bbox[2] * bbox[3], 2),
        "iscrowd": 0,
        **({"difficult": 1} if difficult else {}),
    }


def iter_records(path: str | Path) -> Iterator[ImageRecord]:
    """The file's images as `ImageRecord`s with their boxes, in file order, one at a time.

    Images and annotations are read side by side (two readers of the file), so the
    annotations must come grouped by image in the images' order, as `write_coco` writes them;
    a file that does not is refused, naming the annotation."""
    path = Path(path)
    names = {c["id"]: c["name"] for c in _categories(path)}
    annotations = top_level_items(path, "annotations")
    pending = next(annotations, None)
    for img in top_level_items(path, "images"):
        crop = tuple(img["crop"]) if img.get("crop") else None
        record = ImageRecord(img["file_name"], img["width"], img["height"], [], img.get("split", "train"), crop)
        while pending is not None and pending["image_id"] == img["id"]:
            x, y, w, h = pending["bbox"]
            record.boxes.append(Box(x, y, w, h, names[pending["category_id"]], bool(pending.get("difficult"))))
            pending = next(annotations, None)
        yield record
    if pending is not None:
        raise FormatError(
            path,
            f"annotation {pending.get('id')} (image_id {pending.get('image_id')}) does not follow its image: "
            "the annotations must be grouped by image in the order of `images` (as the parse stage writes them)",
        )


def _categories(path: Path) -> list[dict]:
    """The file's categories: from its end, where `write_coco` puts them, else by reading it all."""
    try:
        return last_value(path, "categories")
    except LookupError:
        found = top_level_values(path, ["categories"])
    if "categories" not in found:
        raise FormatError(path, "COCO file lacks a list 'categories'")
    return found["categories"]


def write_json(path: str | Path, data: dict | list) -> None:
    """Deterministic JSON: sorted keys are not used (order is meaningful), but no timestamps."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
