"""Helpers shared by parsers: text reading, file discovery, split lists, box clipping,
and the loop over one per-image text label file.

No stage of its own: the box parsers of the `parse` rule are built from these.
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import overload

from ..imageio import IMAGE_EXTENSIONS, image_size
from .base import Box, FormatError, ImageRecord, SkipLog

# (line text, label file, line number, image width, image height) -> a box, or None for a
# line that carries none (blank, header, ignored class)
LineBox = Callable[[str, Path, int, int, int], Box | None]


def read_lines(path: Path) -> list[str]:
    """Lines without BOM and \\r; FormatError when the file cannot be decoded."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"not UTF-8 text ({exc})") from None
    return text.replace("\r", "").split("\n")


# Path order (pathlib compares the parts) is the order of the strings with the separator
# replaced by a character below every other: the lists below hold such strings, not Paths
_PART_BREAK = "\x00"


class SortedPaths(Sequence[Path]):
    """Files in Path order, kept as strings: a label list is as long as its dataset, and a str
    takes about a third of a Path's memory."""

    def __init__(self, keys: Iterable[str]):
        self._keys = sorted(keys)

    def __len__(self) -> int:
        return len(self._keys)

    @overload
    def __getitem__(self, index: int) -> Path: ...

    @overload
    def __getitem__(self, index: slice) -> list[Path]: ...

    def __getitem__(self, index: int | slice) -> Path | list[Path]:
        if isinstance(index, slice):
            return [_path(k) for k in self._keys[index]]
        return _path(self._keys[index])

    def __iter__(self) -> Iterator[Path]:
        return (_path(k) for k in self._keys)


def _path(key: str) -> Path:
    return Path(key.replace(_PART_BREAK, os.sep))


def expand(root: Path, patterns: str | Iterable[str], **fields: str) -> SortedPaths:
    """Sorted files matching glob patterns relative to `root` (after `{field}` substitution)."""
    if isinstance(patterns, str):
        patterns = [patterns]
    found: set[str] = set()
    for pattern in patterns:
        # the pattern is a normalised Path, so glob's matches are too: equal files, equal strings
        matches = glob.iglob(str(root / pattern.format(**fields)), recursive=True)
        found.update(p.replace(os.sep, _PART_BREAK) for p in matches if os.path.isfile(p))
    return SortedPaths(found)


class ImageIndex(Mapping[str, Path]):
    """Image stem and file name -> path, kept as strings (one per image, shared by its two keys)."""

    def __init__(self) -> None:
        self._paths: dict[str, str] = {}

    def add(self, folder: str, name: str) -> None:
        path = os.path.join(folder, name)
        self._paths.setdefault(name, path)
        self._paths.setdefault(os.path.splitext(name)[0], path)

    def __getitem__(self, key: str) -> Path:
        return Path(self._paths[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


def image_index(root: Path, folders: str | Iterable[str], **fields: str) -> ImageIndex:
    """Map image stem and file name -> path over the given image folders (globs allowed); the
    first in sorted order wins."""
    if isinstance(folders, str):
        folders = [folders]
    index = ImageIndex()
    for folder in folders:
        for directory in sorted(glob.glob(str(root / folder.format(**fields)))):
            for name in sorted(os.listdir(directory)):
                if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                    index.add(directory, name)
    return index


def clip_box(
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    width: int,
    height: int,
    category: str,
    path: Path,
    line: int | None = None,
    difficult: bool = False,
) -> Box:
    """Clip a corner box to the image; FormatError when nothing is left of it."""
    cx0, cy0 = min(max(x0, 0.0), width), min(max(y0, 0.0), height)
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    if x1 < x0 or y1 < y0:
        raise FormatError(path, f"box has negative size ({x0}, {y0}, {x1}, {y1})", line)
    if cx1 <= cx0 or cy1 <= cy0:
        raise FormatError(path, f"box ({x0}, {y0}, {x1}, {y1}) lies outside the {width}x{height} image", line)
    return Box(cx0, cy0, cx1 - cx0, cy1 - cy0, category, difficult)


def split_fields(text: str, count: int, path: Path, line: int, separator: str | None = None) -> list[str] | None:
    """The `count` fields of one annotation line, or None for a blank line.

    With a separator, one trailing separator is tolerated (VisDrone writes some lines so).
    """
    text = text.strip()
    if not text:
        return None
    fields = [f.strip() for f in text.split(separator)]
    if separator is not None and len(fields) == count + 1 and fields[-1] == "":
        fields.pop()
    if len(fields) != count:
        raise FormatError(path, f"expected {count} fields, got {len(fields)}: {text!r}", line)
    return fields


def to_numbers(fields: Iterable[str], path: Path, line: int | None = None) -> list[float]:
    """Finite floats; FormatError naming the offending field otherwise."""
    values = []
    for field in fields:
        try:
            value = float(field)
        except ValueError:
            raise FormatError(path, f"not a number: {field!r}", line) from None
        if not math.isfinite(value):
            raise FormatError(path, f"not a finite number: {field!r}", line)
        values.append(value)
    return values


def to_integers(fields: Iterable[str], path: Path, line: int | None = None) -> list[int]:
    fields = list(fields)
    try:
        return [int(field) for field in fields]
    except ValueError:
        raise FormatError(path, f"expected integers, got {' '.join(fields)!r}", line) from None


def read_list(path: Path) -> list[str]:
    """Names of a split list, one per line; FormatError when the list is missing."""
    if not path.is_file():
        raise FormatError(path, "split list missing")
    return [name.strip() for name in read_lines(path) if name.strip()]


def split_membership(root: Path, pattern: str | None, splits: Iterable[str]) -> dict[str, str] | None:
    """{image stem: split} from per-split lists (`pattern` with `{split}`); None without lists."""
    if not pattern:
        return None
    member = {}
    for split in splits:
        for stem in read_list(root / pattern.format(split=split)):
            member[stem] = split
    return member


def text_label_record(
    root: Path, label_path: Path, image: Path, split: str, line_box: LineBox, skips: SkipLog
) -> ImageRecord | None:
    """The record of one image and its per-image text label file.

    An unreadable image or label file skips the image; a bad line skips only its object.
    An empty label file is an image without objects.
    """
    try:
        width, height = image_size(image)
        lines = read_lines(label_path)
    except FormatError as err:
        skips.skip(err, "image")
        return None
    record = ImageRecord(str(image.relative_to(root)), width, height, split=split)
    for number, text in enumerate(lines, 1):
        try:
            box = line_box(text, label_path, number, width, height)
        except FormatError as err:
            skips.skip(err, "object")
            continue
        if box is not None:
            record.boxes.append(box)
    return record


def text_label_records(root: Path, opts: dict, line_box: LineBox, skips: SkipLog) -> Iterator[ImageRecord]:
    """Records of every split of a dataset with one text label file per image, found by the
    `labels` glob and matched to the image of the same stem in the `images` folders."""
    for split in opts["splits"]:
        images = image_index(root, opts["images"], split=split)
        for label in expand(root, opts["labels"], split=split):
            image = images.get(label.stem)
            if image is None:
                skips.skip(FormatError(label, "no image with this name"), "image")
                continue
            record = text_label_record(root, label, image, split, line_box, skips)
            if record is not None:
                yield record
