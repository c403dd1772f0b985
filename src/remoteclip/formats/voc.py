"""Pascal-VOC XML (DIOR; tolerant of the HRRSD and RSOD variants): one XML per image with
`filename`, `size/{width,height}` and `object/{name,bndbox/{xmin,ymin,xmax,ymax}}`.

Tolerated variants: missing or zero `size` (read from the image), float coordinates,
names with spaces or mixed case, a `filename` without extension or missing (the XML's
stem is used), per-class folders (RSOD) through glob patterns. The image header is always
read: a missing or corrupt image, or one whose size differs from `size`, skips the image.

Rule `parse` (DET): one `ImageRecord` per XML file, with the image's size and its boxes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
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
                record.boxes.append(
                    clip_box(x0, y0, x1, y1, record.width, record.height, category, xml_path, difficult=difficult)
                )
            except FormatError as err:
                skips.skip(err, "object")
        yield record


def _record(
    root: Path, xml_path: Path, tree: ET.Element, images: Mapping[str, Path], split: str, skips: SkipLog
) -> ImageRecord | None:
    name = (tree.findtext("filename") or "").strip()
    image = images.get(name) or images.get(Path(name).stem) or images.get(xml_path.stem)
    if image is None:
        skips.skip(FormatError(xml_path, f"image {name or xml_path.stem!r} not found"), "image")
        return None
    try:
        # the header is read even when <size> is given, so a missing or corrupt image is
        # reported here rather than when the shards are written
        width, height = image_size(image)
        declared = _declared_size(tree, xml_path)
        if declared is not None and declared != (width, height):
            raise FormatError(xml_path, f"<size> says {declared[0]}x{declared[1]} but {image.name} is {width}x{height}")
    except FormatError as err:
        skips.skip(err, "image")
        return None
    return ImageRecord(str(image.relative_to(root)), width, height, split=split)


def _declared_size(tree: ET.Element, xml_path: Path) -> tuple[int, int] | None:
    """(width, height) from <size>, or None when it is missing or zero."""
    size = tree.find("size")
    if size is None:
        return None
    try:
        width, height = (int(float(size.findtext(tag) or 0)) for tag in ("width", "height"))
    except ValueError as err:
        raise FormatError(xml_path, f"bad <size>: {err}") from None
    return (width, height) if width > 0 and height > 0 else None
