"""The unified annotation file between parsing and B2C: COCO detection JSON.

Images carry `file_name` relative to the dataset's raw root, `width`/`height` of the
image or of its tile, `split`, and `crop` [x, y, w, h] when the record is a tile of a
larger file. Categories are canonical lower-case names, numbered in sorted order.
pycocotools loads it as is.

Written by the `parse` rule (results/annotations/{dataset}.json), read by the `b2c` rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .formats.base import Box, ImageRecord


def to_coco(records: Iterable[ImageRecord], dataset: str) -> dict:
    records = list(records)
    names = sorted({b.category for r in records for b in r.boxes})
    ids = {n: i + 1 for i, n in enumerate(names)}
    images: list[dict] = []
    annotations: list[dict] = []
    for image_id, rec in enumerate(records, 1):
        entry = {
            "id": image_id,
            "file_name": rec.file_name,
            "width": rec.width,
            "height": rec.height,
            "split": rec.split,
        }
        if rec.crop is not None:
            entry["crop"] = list(rec.crop)
        images.append(entry)
        for box in rec.boxes:
            bbox = [round(float(v), 2) for v in (box.x, box.y, box.w, box.h)]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": ids[box.category],
                    "bbox": bbox,
                    "area": round(bbox[2] * bbox[3], 2),
                    "iscrowd": 0,
                    **({"difficult": 1} if box.difficult else {}),
                }
            )
    return {
        "info": {"dataset": dataset, "description": "remoteclip unified annotations"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": ids[n], "name": n, "supercategory": "object"} for n in names],
    }


def from_coco(data: dict) -> list[ImageRecord]:
    names = {c["id"]: c["name"] for c in data["categories"]}
    records = {}
    for img in data["images"]:
        crop = tuple(img["crop"]) if img.get("crop") else None
        records[img["id"]] = ImageRecord(
            img["file_name"], img["width"], img["height"], [], img.get("split", "train"), crop
        )
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        records[ann["image_id"]].boxes.append(Box(x, y, w, h, names[ann["category_id"]], bool(ann.get("difficult"))))
    return list(records.values())


def write_json(path: str | Path, data: dict | list) -> None:
    """Deterministic JSON: sorted keys are not used (order is meaningful), but no timestamps."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
