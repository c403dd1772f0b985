"""HRSC2016: one XML per image, root `<HRSC_Image>`, in `FullDataSet/Annotations/`, images
`FullDataSet/AllImages/<Img_ID>.bmp`.

    <HRSC_Image><Img_ID>100000001</Img_ID><Img_FileName>100000001</Img_FileName><Img_FileFmt>bmp</Img_FileFmt>
      <Img_SizeWidth>1166</Img_SizeWidth><Img_SizeHeight>753</Img_SizeHeight><Annotated>1</Annotated>
      <HRSC_Objects><HRSC_Object><Class_ID>100000013</Class_ID><difficult>0</difficult>
        <box_xmin>194</box_xmin><box_ymin>243</box_ymin><box_xmax>972</box_xmax><box_ymax>507</box_ymax>
        <mbox_cx>...</mbox_cx>...<mbox_ang>-0.21</mbox_ang></HRSC_Object></HRSC_Objects></HRSC_Image>

The horizontal `box_*` corners are used; the oriented `mbox_*` (angle in radians) are not
needed for horizontal boxes. Every object is labelled `category` ("ship"), as RemoteCLIP
does. `exclude_class_ids` drops objects by their hierarchical `Class_ID`; several
third-party loaders drop 100000027 and 100000022, whose meaning is unverified, so the
default drops nothing. An image that is not annotated (`Annotated` 0, no objects) is a
record without boxes.

Rule `parse` (DET): one `ImageRecord` per XML file, every box labelled `category`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..imageio import image_size
from .base import Box, FormatError, ImageRecord, SkipLog
from .common import clip_box, expand, image_index, split_membership, to_numbers
from .labels import Labeler

DEFAULTS = {
    "splits": ["train"],
    "annotations": "FullDataSet/Annotations/*.xml",
    "images": ["FullDataSet/AllImages"],
    # e.g. "ImageSets/{split}.txt" (lists of Img_IDs); without lists every XML is "train"
    "split_lists": None,
    "exclude_class_ids": [],
    "skip_difficult": False,
    "category": "ship",
}
CORNER_TAGS = ("box_xmin", "box_ymin", "box_xmax", "box_ymax")


def image_for(tree: ET.Element, xml_path: Path, images: Mapping[str, Path]) -> Path:
    name = (tree.findtext("Img_FileName") or "").strip()
    extension = (tree.findtext("Img_FileFmt") or "").strip()
    candidates = [f"{name}.{extension}" if name and extension else None, name or None, xml_path.stem]
    for candidate in candidates:
        if candidate and candidate in images:
            return images[candidate]
    raise FormatError(xml_path, f"image {name or xml_path.stem!r} not found")


def declared_size(tree: ET.Element, xml_path: Path) -> tuple[int, int] | None:
    """(Img_SizeWidth, Img_SizeHeight), or None when either is absent or zero."""
    texts = [(tree.findtext(tag) or "").strip() for tag in ("Img_SizeWidth", "Img_SizeHeight")]
    if not all(texts):
        return None
    width, height = (int(v) for v in to_numbers(texts, xml_path))
    return (width, height) if width > 0 and height > 0 else None


def image_record(root: Path, xml_path: Path, tree: ET.Element, images: Mapping[str, Path], split: str) -> ImageRecord:
    """The record without boxes; FormatError when the image is missing, unreadable or of another size."""
    if tree.tag != "HRSC_Image":
        raise FormatError(xml_path, f"root element is <{tree.tag}>, expected <HRSC_Image>")
    image = image_for(tree, xml_path, images)
    width, height = image_size(image)
    declared = declared_size(tree, xml_path)
    if declared is not None and declared != (width, height):
        raise FormatError(xml_path, f"declares {declared[0]}x{declared[1]} but {image.name} is {width}x{height}")
    return ImageRecord(str(image.relative_to(root)), width, height, split=split)


def wanted(obj: ET.Element, excluded_class_ids: set[str], skip_difficult: bool) -> bool:
    if (obj.findtext("Class_ID") or "").strip() in excluded_class_ids:
        return False
    return not (skip_difficult and (obj.findtext("difficult") or "0").strip() == "1")


def object_box(obj: ET.Element, record: ImageRecord, category: str, xml_path: Path) -> Box:
    texts = []
    for tag in CORNER_TAGS:
        text = (obj.findtext(tag) or "").strip()
        if not text:
            object_id = (obj.findtext("Object_ID") or "?").strip()
            raise FormatError(xml_path, f"object {object_id} has no <{tag}>")
        texts.append(text)
    x0, y0, x1, y1 = to_numbers(texts, xml_path)
    difficult = (obj.findtext("difficult") or "0").strip() == "1"
    return clip_box(x0, y0, x1, y1, record.width, record.height, category, xml_path, difficult=difficult)


def parse(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[ImageRecord]:
    opts = {**DEFAULTS, **options}
    category = Labeler(opts)(opts["category"])
    excluded = {str(c).strip() for c in opts["exclude_class_ids"] or []}
    member = split_membership(root, opts["split_lists"], opts["splits"])
    images = image_index(root, opts["images"])
    for xml_path in expand(root, opts["annotations"]):
        split = "train" if member is None else member.get(xml_path.stem)
        if split is None:
            continue
        try:
            tree = ET.parse(xml_path).getroot()
            record = image_record(root, xml_path, tree, images, split)
        except ET.ParseError as exc:
            skips.skip(FormatError(xml_path, f"malformed XML ({exc})"), "image")
            continue
        except FormatError as err:
            skips.skip(err, "image")
            continue
        for obj in tree.iter("HRSC_Object"):
            if category is None or not wanted(obj, excluded, opts["skip_difficult"]):
                continue
            try:
                record.boxes.append(object_box(obj, record, category, xml_path))
            except FormatError as err:
                skips.skip(err, "object")
        yield record
