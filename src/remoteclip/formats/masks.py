"""Segmentation label images turned into boxes by Mask-to-Box, tile by tile.

- `rgb_mask`: colour-coded RGB labels (ISPRS Potsdam/Vaihingen: `palette` maps colours
  to classes; a colour outside the table is an error naming the file);
- `index_mask`: single-channel class indices (LoveDA: 0 = no-data, 1 = background, ...).

The label file names the image through a regular-expression rewrite of its path
(`image_from_label`), e.g. Potsdam `5_Labels_all/(.*)_label.tif` -> `2_Ortho_RGB/\\1_RGB.tif`.

Rule `parse` (SEG): one `ImageRecord` per label image, or one per `tile` window of it (a crop of
the image file), with one box per connected component of each class in the window
(`m2b.class_boxes`); `ignore_classes` get no boxes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..imageio import image_size
from ..m2b import class_boxes
from ..tiling import tiles
from .base import Box, FormatError, ImageRecord, SkipLog
from .common import expand
from .labels import Labeler

ISPRS_PALETTE = {
    "impervious surfaces": [255, 255, 255],
    "building": [0, 0, 255],
    "low vegetation": [0, 255, 255],
    "tree": [0, 255, 0],
    "car": [255, 255, 0],
    "clutter": [255, 0, 0],
    "boundary": [0, 0, 0],
}
LOVEDA_VALUES = {
    0: "no-data",
    1: "background",
    2: "building",
    3: "road",
    4: "water",
    5: "barren",
    6: "forest",
    7: "agriculture",
}

RGB_DEFAULTS = {
    "splits": ["train"],
    "split_folders": {},
    "labels": "5_Labels_all/*_label.tif",
    "image_from_label": {"pattern": r"^5_Labels_all/(.*)_label\.tif$", "replace": r"2_Ortho_RGB/\1_RGB.tif"},
    "palette": ISPRS_PALETTE,
    "ignore_classes": ["impervious surfaces", "clutter", "boundary"],
    "tile": 512,
    "overlap": 0,
    "min_area": 0,
}
INDEX_DEFAULTS = {
    "splits": ["train"],
    "split_folders": {"train": "Train", "val": "Val", "test": "Test"},
    "labels": "{split_folder}/*/masks_png/*.png",
    "image_from_label": {"pattern": r"masks_png", "replace": "images_png"},
    "values": LOVEDA_VALUES,
    "ignore_classes": ["no-data", "background"],
    "tile": None,
    "overlap": 0,
    "min_area": 0,
}


def _read(path: Path) -> Image.Image:
    try:
        im = Image.open(path)
        im.load()
        return im
    except FileNotFoundError:
        raise FormatError(path, "label image missing") from None
    except Exception as exc:
        raise FormatError(path, f"unreadable label image ({type(exc).__name__}: {exc})") from None


def rgb_to_index(rgb: np.ndarray, palette: dict[str, list[int]], path: Path) -> tuple[np.ndarray, list[str]]:
    """Class indices (into the returned name list) of an HxWx3 colour label image."""
    names = sorted(palette)
    codes = np.array([(c[0] << 16) | (c[1] << 8) | c[2] for c in (palette[n] for n in names)], np.int64)
    packed = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    order = np.argsort(codes)
    position = np.searchsorted(codes[order], packed)
    position = np.clip(position, 0, len(codes) - 1)
    found = codes[order][position] == packed
    if not found.all():
        bad = np.unique(packed[~found])
        shown = ", ".join(f"({v >> 16}, {(v >> 8) & 255}, {v & 255})" for v in bad[:5])
        raise FormatError(
            path, f"{(~found).sum()} pixels have colours not in the palette: {shown}" + (" ..." if bad.size > 5 else "")
        )
    return order[position].astype(np.int32), names


def _image_for(label: Path, root: Path, rule: dict[str, str]) -> Path:
    rel = label.relative_to(root).as_posix()
    image_rel = re.sub(rule["pattern"], rule["replace"], rel)
    if image_rel == rel:
        raise FormatError(label, f"image_from_label pattern {rule['pattern']!r} does not match this label path")
    return root / image_rel


def _parse(root: Path, opts: dict[str, Any], skips: SkipLog, decode) -> Iterator[ImageRecord]:
    labeler = Labeler(opts)
    for split in opts["splits"]:
        folder = opts["split_folders"].get(split, split)
        for label in expand(root, opts["labels"], split=split, split_folder=folder):
            try:
                image = _image_for(label, root, opts["image_from_label"])
                width, height = image_size(image)
                classes, names = decode(_read(label), label)
                if classes.shape != (height, width):
                    raise FormatError(
                        label,
                        f"label is {classes.shape[1]}x{classes.shape[0]} but image {image.name} is {width}x{height}",
                    )
            except FormatError as err:
                skips.skip(err, "image")
                continue
            canonical = [labeler(n) for n in names]
            for tx, ty, tw, th in tiles(width, height, opts["tile"], opts["overlap"]):
                window = classes[ty : ty + th, tx : tx + tw]
                boxes = []
                for value in np.unique(window):
                    category = canonical[value]
                    if category is None:
                        continue
                    for x, y, w, h in class_boxes(window == value, opts["min_area"]):
                        boxes.append(Box(float(x), float(y), float(w), float(h), category))
                crop = None if (tx, ty, tw, th) == (0, 0, width, height) else (tx, ty, tw, th)
                yield ImageRecord(str(image.relative_to(root)), tw, th, boxes, split, crop)


def parse_rgb(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[ImageRecord]:
    opts = {**RGB_DEFAULTS, **options}

    def decode(im: Image.Image, path: Path):
        return rgb_to_index(np.asarray(im.convert("RGB")), opts["palette"], path)

    yield from _parse(root, opts, skips, decode)


def parse_index(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[ImageRecord]:
    opts = {**INDEX_DEFAULTS, **options}
    values = {int(k): v for k, v in opts["values"].items()}
    names = [values.get(v, f"#{v}") for v in range(max(values) + 1)]

    def decode(im: Image.Image, path: Path):
        if im.mode not in ("L", "P", "I", "I;16", "I;16L", "I;16B"):
            raise FormatError(path, f"index mask must be single-channel, got mode {im.mode}")
        arr = np.asarray(im).astype(np.int32)
        unknown = np.setdiff1d(np.unique(arr), list(values))
        if unknown.size:
            raise FormatError(path, f"mask values {unknown.tolist()[:10]} are not in the class table")
        return arr, names

    yield from _parse(root, opts, skips, decode)
