"""Helpers that write tiny files in the datasets' real formats (the tests choose the content)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from remoteclip.formats.base import Box, ImageRecord

SIZE = (64, 48)


def write_image(path: Path, size: tuple[int, int] = SIZE, colour: tuple[int, int, int] = (90, 120, 60)) -> Path:
    """A small RGB image; the format follows the file extension (.jpg, .png, .bmp, .tif)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def write_corrupt(path: Path) -> Path:
    """A file with an image extension that no decoder can read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not an image\x00\x01\x02")
    return path


def write_text(path: Path, lines: list[str], newline: str = "\n", bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = newline.join(lines) + (newline if lines else "")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def voc_object(name: str, box: tuple) -> str:
    x0, y0, x1, y1 = box
    return (
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
        f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
    )


def voc_xml(filename: str, objects: list[str], width: int = SIZE[0], height: int = SIZE[1]) -> str:
    """A Pascal-VOC annotation (HRRSD, RSOD) with the usual fields the parser does not need."""
    return (
        f"<annotation><folder>JPEGImages</folder><filename>{filename}</filename>"
        f"<source><database>Unknown</database></source>"
        f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
        f"<segmented>0</segmented>{''.join(objects)}</annotation>"
    )


def box_tuples(record: ImageRecord) -> list[tuple[str, float, float, float, float]]:
    """(category, x, y, w, h) of each box, rounded, in the order parsed."""
    return [box_tuple(b) for b in record.boxes]


def box_tuple(box: Box) -> tuple[str, float, float, float, float]:
    return box.category, round(box.x, 3), round(box.y, 3), round(box.w, 3), round(box.h, 3)


def by_file(records: list[ImageRecord]) -> dict[str, ImageRecord]:
    return {r.file_name: r for r in records}
