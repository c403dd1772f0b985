"""AU-AIR: one `annotations.json` for all frames, images in `images/`.

    {"categories": ["Human", "Car", ...],
     "annotations": [{"image_name": "frame_....jpg", "image_width:": 1920, "image_height": 1080,
                      "bbox": [{"top": 266, "left": 1016, "height": 73, "width": 90, "class": 1}], ...}]}

`categories` is a list of names indexed by `class`. The real file spells the width key
`"image_width:"` (trailing colon); `"image_width"` is accepted too. The declared size must
match the image file, since the boxes are in its pixels. The file has no splits; every
frame gets the `split` option.

Rule `parse` (DET): one `ImageRecord` per frame, its boxes from `left`, `top`, `width`,
`height`, their class names from `categories` (or the `categories` option).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..imageio import image_size
from .base import Box, FormatError, ImageRecord, SkipLog
from .common import clip_box, image_index, to_numbers
from .labels import Labeler

DEFAULTS = {
    "annotations": "annotations.json",
    "images": "images",
    # class names by index; null reads them from the file's `categories`
    "categories": None,
    "split": "train",
}
WIDTH_KEYS = ("image_width:", "image_width")
BOX_KEYS = ("left", "top", "width", "height")


def load(path: Path) -> dict:
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        raise FormatError(path, "annotation file missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise FormatError(path, "expected an object with an 'annotations' list (AU-AIR format)")
    return data


def category_names(data: dict, configured: list[str] | None, path: Path) -> list[str]:
    names = configured if configured else data.get("categories")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise FormatError(path, "'categories' must be a list of class names")
    return names


def declared_size(entry: dict, where: str, path: Path) -> tuple[int, int] | None:
    """(width, height) as the entry states it, or None when it states neither."""
    width = next((entry[k] for k in WIDTH_KEYS if k in entry), None)
    height = entry.get("image_height")
    if width is None and height is None:
        return None
    if not isinstance(width, (int, float)) or not isinstance(height, (int, float)):
        raise FormatError(path, f"{where}: image width/height must be numbers, got {width!r}, {height!r}")
    return int(width), int(height)


def object_box(
    obj: Any, names: list[str], labeler: Labeler, width: int, height: int, where: str, path: Path
) -> Box | None:
    """The clipped box of one `bbox` entry, or None for an ignored class."""
    try:
        return _object_box(obj, names, labeler, width, height, path)
    except FormatError as err:
        raise FormatError(path, f"{where}: {err.reason}") from None


def _object_box(obj: Any, names: list[str], labeler: Labeler, width: int, height: int, path: Path) -> Box | None:
    if not isinstance(obj, dict):
        raise FormatError(path, "box is not an object")
    missing = [k for k in (*BOX_KEYS, "class") if k not in obj]
    if missing:
        raise FormatError(path, f"box lacks {', '.join(missing)}")
    left, top, w, h = to_numbers([str(obj[k]) for k in BOX_KEYS], path)
    index = obj["class"]
    if not isinstance(index, int) or not 0 <= index < len(names):
        raise FormatError(path, f"class {index!r} is not an index into the {len(names)} categories")
    category = labeler(names[index])
    if category is None:
        return None
    return clip_box(left, top, left + w, top + h, width, height, category, path)


def entry_record(root: Path, entry: Any, where: str, images: Mapping[str, Path], path: Path, split: str) -> ImageRecord:
    """The record of one `annotations[i]` without its boxes; FormatError when unusable."""
    if not isinstance(entry, dict) or not isinstance(entry.get("image_name"), str):
        raise FormatError(path, f"{where} has no 'image_name'")
    if not isinstance(entry.get("bbox"), list):
        raise FormatError(path, f"{where} ({entry['image_name']}) has no 'bbox' list")
    image = images.get(entry["image_name"])
    if image is None:
        raise FormatError(path, f"{where}: image file {entry['image_name']!r} not found")
    width, height = image_size(image)
    declared = declared_size(entry, where, path)
    if declared is not None and declared != (width, height):
        raise FormatError(
            path, f"{where}: declared size {declared[0]}x{declared[1]} but {image.name} is {width}x{height}"
        )
    return ImageRecord(str(image.relative_to(root)), width, height, split=split)


def parse(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[ImageRecord]:
    opts = {**DEFAULTS, **options}
    labeler = Labeler(opts)
    path = root / opts["annotations"]
    data = load(path)
    names = category_names(data, opts["categories"], path)
    images = image_index(root, opts["images"])
    for number, entry in enumerate(data["annotations"]):
        where = f"annotations[{number}]"
        try:
            record = entry_record(root, entry, where, images, path, opts["split"])
        except FormatError as err:
            skips.skip(err, "image")
            continue
        for box_number, obj in enumerate(entry["bbox"]):
            try:
                box = object_box(obj, names, labeler, record.width, record.height, f"{where}.bbox[{box_number}]", path)
            except FormatError as err:
                skips.skip(err, "object")
                continue
            if box is not None:
                record.boxes.append(box)
        yield record
