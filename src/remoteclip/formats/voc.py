"""Pascal-VOC XML (DIOR; tolerant of the HRRSD and RSOD variants): one XML per image with
`filename`, `size/{width,height}` and `object/{name,bndbox/{xmin,ymin,xmax,ymax}}`.

Tolerated variants: missing or zero `size` (read from the image), float coordinates,
names with spaces or mixed case, a `filename` without extension or missing (the XML's
stem is used), per-class folders (RSOD) through glob patterns.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..imageio import image_size
from .base import FormatError, ImageRecord, SkipLog
from .common import clip_box, expand, image_index, split_membership
from .labels import Labeler

DEFAULTS = {
    "splits": ["train"],
    "annotations": "Annotations/Horizontal Bounding Boxes/*.xml",
    "images": ["JPEGImages-trainval", "JPEGImages-test", "JPEGImages"],
    # optional split lists (ImageSets/Main/{split}.txt); without them every XML is "train"
    "split_lists": None,
    "skip_difficult": False,
}


def _text(node: ET.Element, tag: str, path: Path) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise FormatError(path, f"<{node.tag}> has no <{tag}>")
    return child.text.strip()


def _number(node: ET.Element, tag: str, path: Path) -> float:
    text = _text(node, tag, path)
    try:
        return float(text)
    except ValueError:
        raise FormatError(path, f"<{tag}> is not a number: {text!r}") from None


def parse(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[ImageRecord]:
    opts = {**DEFAULTS, **options}
    labeler = Labeler(opts)
    member = split_membership(root, opts["split_lists"], opts["splits"])
    images = image_index(root, opts["images"])
    for xml_path in expand(root, opts["annotations"]):
        split = "train" if member is None else member.get(xml_path.stem)
        if split is None:
            continue
        try:
            tree = ET.parse(xml_path).getroot()
        except ET.ParseError as exc:
            skips.skip(FormatError(xml_path, f"malformed XML ({exc})"), "image")
            continue
        record = _record(root, xml_path, tree, images, split, skips)
        if record is None:
            continue
        for obj in tree.iter("object"):
            try:
                raw = _text(obj, "name", xml_path)
                category = labeler(raw)
                difficult = (obj.findtext("difficult") or "0").strip() == "1"
                if category is None or (difficult and opts["skip_difficult"]):
                    continue
                bb = obj.find("bndbox")
                if bb is None:
                    raise FormatError(xml_path, f"object {raw!r} has no <bndbox>")
                x0, y0, x1, y1 = (_number(bb, t, xml_path) for t in ("xmin", "ymin", "xmax", "ymax"))
                record.boxes.append(clip_box(x0, y0, x1, y1, record.width, record.height, category, xml_path,
                                             difficult=difficult))
            except FormatError as err:
                skips.skip(err, "object")
        yield record


def _record(root: Path, xml_path: Path, tree: ET.Element, images: dict[str, Path], split: str,
            skips: SkipLog) -> ImageRecord | None:
    name = (tree.findtext("filename") or "").strip()
    image = images.get(name) or images.get(Path(name).stem) or images.get(xml_path.stem)
    if image is None:
        skips.skip(FormatError(xml_path, f"image {name or xml_path.stem!r} not found"), "image")
        return None
    size = tree.find("size")
    try:
        width = int(float(size.findtext("width") or 0)) if size is not None else 0
        height = int(float(size.findtext("height") or 0)) if size is not None else 0
        if width <= 0 or height <= 0:
            width, height = image_size(image)
    except (ValueError, FormatError) as err:
        skips.skip(err if isinstance(err, FormatError) else FormatError(xml_path, f"bad <size>: {err}"), "image")
        return None
    return ImageRecord(str(image.relative_to(root)), width, height, split=split)
