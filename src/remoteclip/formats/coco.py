"""COCO instance JSON with polygons (iSAID's `iSAID_{split}.json`, raw category ids).

Two ways to boxes, chosen by `boxes`:
- `m2b` (default, the paper's route for SEG-4): per category, the union of its polygons is
  rasterised and Mask-to-Box turns each connected component into a box, tile by tile;
- `instances`: each annotation's polygon becomes its horizontal bounding box, clipped
  to the tile.

Rule `parse` (SEG): one `ImageRecord` per image of the configured `splits`, or one per `tile`
window (a crop of the file; `overlap` pixels shared by neighbours) with that window's boxes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pycocotools import mask as mask_utils

from ..m2b import class_boxes
from ..tiling import tiles
from .base import Box, FormatError, ImageRecord, SkipLog
from .common import image_index
from .labels import Labeler

DEFAULTS = {
    "splits": ["train"],
    "annotations": "{split}/Annotations/iSAID_{split}.json",
    "images": "{split}/images",
    "boxes": "m2b",
    "tile": None,
    "overlap": 0,
    "min_area": 0,
}


def load(path: Path) -> dict:
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        raise FormatError(path, "annotation file missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(path, f"not valid JSON ({exc})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise FormatError(path, f"COCO file lacks a list {key!r}")
    return data


def polygon_hbb(segmentation: list, path: Path, ann_id: Any) -> tuple[float, float, float, float]:
    points = [v for part in segmentation for v in part]
    if len(points) < 6 or len(points) % 2:
        raise FormatError(path, f"annotation {ann_id}: polygon needs at least 3 x,y pairs")
    xs, ys = points[0::2], points[1::2]
    return min(xs), min(ys), max(xs), max(ys)


def parse(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[ImageRecord]:
    opts = {**DEFAULTS, **options}
    if opts["boxes"] not in ("m2b", "instances"):
        raise ValueError(f"coco parser: boxes must be 'm2b' or 'instances', got {opts['boxes']!r}")
    labeler = Labeler(opts)
    for split in opts["splits"]:
        path = root / opts["annotations"].format(split=split)
        data = load(path)
        names = {c["id"]: labeler(str(c.get("name", c["id"]))) for c in data["categories"]}
        by_image = defaultdict(list)
        for ann in data["annotations"]:
            by_image[ann.get("image_id")].append(ann)
        images = image_index(root, opts["images"], split=split)
        for info in sorted(data["images"], key=lambda i: str(i.get("file_name"))):
            file_path = images.get(str(info.get("file_name")))
            if file_path is None:
                skips.skip(
                    FormatError(path, f"image {info.get('file_name')!r} (id {info.get('id')}) not found"), "image"
                )
                continue
            w, h = int(info.get("width") or 0), int(info.get("height") or 0)
            if w <= 0 or h <= 0:
                skips.skip(FormatError(path, f"image {info.get('file_name')!r} has no width/height"), "image")
                continue
            anns = by_image.get(info.get("id"), [])
            boxer = _m2b_boxes if opts["boxes"] == "m2b" else _instance_boxes
            per_tile = boxer(anns, names, w, h, opts, path, skips)
            for window, boxes in per_tile:
                crop = None if window == (0, 0, w, h) else window
                yield ImageRecord(str(file_path.relative_to(root)), window[2], window[3], boxes, split, crop)


def _valid(ann: dict, names: dict, path: Path, skips: SkipLog) -> str | None:
    if ann.get("category_id") not in names:
        skips.skip(
            FormatError(path, f"annotation {ann.get('id')}: unknown category_id {ann.get('category_id')}"), "object"
        )
        return None
    return names[ann["category_id"]]


def _instance_boxes(anns, names, w, h, opts, path, skips):
    corners = []
    for ann in anns:
        category = _valid(ann, names, path, skips)
        if category is None:
            continue
        try:
            seg = ann.get("segmentation")
            if isinstance(seg, list) and seg:
                corners.append((category, polygon_hbb(seg, path, ann.get("id"))))
            elif isinstance(ann.get("bbox"), list) and len(ann["bbox"]) == 4:
                x, y, bw, bh = (float(v) for v in ann["bbox"])
                corners.append((category, (x, y, x + bw, y + bh)))
            else:
                raise FormatError(path, f"annotation {ann.get('id')}: neither polygon nor bbox")
        except (FormatError, TypeError, ValueError) as err:
            skips.skip(
                err if isinstance(err, FormatError) else FormatError(path, f"annotation {ann.get('id')}: {err}"),
                "object",
            )
    out = []
    for tx, ty, tw, th in tiles(w, h, opts["tile"], opts["overlap"]):
        boxes = []
        for category, (x0, y0, x1, y1) in corners:
            cx0, cy0, cx1, cy1 = max(x0, tx), max(y0, ty), min(x1, tx + tw), min(y1, ty + th)
            if cx1 > cx0 and cy1 > cy0:
                boxes.append(Box(cx0 - tx, cy0 - ty, cx1 - cx0, cy1 - cy0, category))
        out.append(((tx, ty, tw, th), boxes))
    return out


def _m2b_boxes(anns, names, w, h, opts, path, skips):
    polygons: dict[str, list] = defaultdict(list)
    for ann in anns:
        category = _valid(ann, names, path, skips)
        seg = ann.get("segmentation")
        if category is None:
            continue
        if not (isinstance(seg, list) and seg and all(len(p) >= 6 for p in seg)):
            skips.skip(FormatError(path, f"annotation {ann.get('id')}: no usable polygon for M2B"), "object")
            continue
        polygons[category].extend(seg)
    masks = {}
    for category, polys in sorted(polygons.items()):
        rles = mask_utils.frPyObjects(polys, h, w)
        masks[category] = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
    out = []
    for tx, ty, tw, th in tiles(w, h, opts["tile"], opts["overlap"]):
        boxes = []
        for category, mask in masks.items():
            for x, y, bw, bh in class_boxes(mask[ty : ty + th, tx : tx + tw], opts["min_area"]):
                boxes.append(Box(float(x), float(y), float(bw), float(bh), category))
        out.append(((tx, ty, tw, th), boxes))
    return out
