"""Helpers shared by parsers: text reading, file discovery, split lists, box clipping,
the loop over one per-image text label file, and the rows of caption tables (hf_tsv, caption_table).

No stage of its own: the box parsers of the `parse` rule are built from these.
"""

from __future__ import annotations

import csv
import fnmatch
import glob
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import overload

import numpy as np

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


# Listings are as long as their dataset (10 M files): they are kept as numpy arrays of file names
# encoded with os.fsencode (one fixed-width bytes item each) and an index into a short list of
# folder strings, a few dozen bytes per file instead of a str or Path (about 0.5 KB per file before).
# The order of names is that of their bytes, which is the order of the str for every UTF-8 name;
# names with undecodable bytes (surrogate escapes) may sort differently from their str: unverified.
# Items are as wide as the longest name: one very long name among millions of short ones widens them all.
_CHUNK = 65_536  # names gathered in a Python list before they move into a numpy array


class _Chunks:
    """(folder id, name bytes) pairs, appended one at a time, kept as numpy arrays."""

    def __init__(self) -> None:
        self._ids: list[np.ndarray] = []
        self._names: list[np.ndarray] = []
        self._pending_ids: list[int] = []
        self._pending_names: list[bytes] = []

    def append(self, folder_id: int, name: bytes) -> None:
        self._pending_ids.append(folder_id)
        self._pending_names.append(name)
        if len(self._pending_names) >= _CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending_names:
            self._ids.append(np.array(self._pending_ids, dtype=np.int32))
            self._names.append(np.array(self._pending_names, dtype=np.bytes_))
            self._pending_ids, self._pending_names = [], []

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All (folder ids, names) in the order appended."""
        self._flush()
        if not self._names:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype="S1")
        ids, names = np.concatenate(self._ids), np.concatenate(self._names)
        self._ids, self._names = [], []
        return ids, names


class _Folders:
    """Folder strings, each stored once, by id."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._ids: dict[str, int] = {}

    def id(self, folder: str) -> int:
        if folder not in self._ids:
            self._ids[folder] = len(self.paths)
            self.paths.append(folder)
        return self._ids[folder]


class SortedPaths(Sequence[Path]):
    """Files in Path order: folder strings once, then per file a folder id and its name."""

    def __init__(self, folders: list[str], ids: np.ndarray, names: np.ndarray):
        self._folders, self._ids, self._names = folders, ids, names

    def __len__(self) -> int:
        return len(self._names)

    @property
    def names(self) -> np.ndarray:
        """The file names, os.fsencode'd, in this order."""
        return self._names

    @overload
    def __getitem__(self, index: int) -> Path: ...

    @overload
    def __getitem__(self, index: slice) -> list[Path]: ...

    def __getitem__(self, index: int | slice) -> Path | list[Path]:
        if isinstance(index, slice):
            return [self._path(i) for i in range(len(self))[index]]
        return self._path(range(len(self))[index])  # range: negative indices and IndexError

    def __iter__(self) -> Iterator[Path]:
        return (self._path(i) for i in range(len(self)))

    def _path(self, i: int) -> Path:
        return Path(os.path.join(self._folders[self._ids[i]], os.fsdecode(self._names[i])))


# Path order (pathlib compares the parts) is the order of the strings with the separator
# replaced by a character below every other
_PART_BREAK = b"\x00"


def _folder_key(folder: str) -> bytes:
    return os.fsencode(folder).replace(os.fsencode(os.sep), _PART_BREAK)


def _path_order(folders: list[str], ids: np.ndarray, names: np.ndarray) -> np.ndarray:
    """Positions of the files in Path order. Sorting by folder, then name, is that order unless
    one folder holds another (its files then fall between the other's by name): only then are
    the full paths compared (not in numpy, whose bytes items drop a trailing NUL)."""
    keys = [_folder_key(f) for f in folders]
    by_key = sorted(range(len(folders)), key=keys.__getitem__)
    nested = any(keys[b].startswith(keys[a] + _PART_BREAK) for a, b in zip(by_key, by_key[1:]))
    if nested:  # rare (no parser's default globs nest): one bytes object per file, in Python
        return np.array(sorted(range(len(names)), key=lambda i: keys[ids[i]] + _PART_BREAK + names[i]), dtype=np.int64)
    rank = np.empty(len(folders), dtype=np.int64)
    rank[by_key] = np.arange(len(folders))
    return np.lexsort((names, rank[ids]))


def _glob_files(pattern: str) -> Iterator[str]:
    """The files glob.iglob(pattern, recursive=True) finds, in its order. glob lists a whole
    folder in memory before it filters it (a str per entry: 60 MB for a million files), so a
    pattern whose last part is a plain wildcard is matched here entry by entry, as glob does it
    (CPython 3.11 glob._iglob and _glob1: hidden names only for a pattern starting with '.')."""
    dirname, basename = os.path.split(pattern)
    if not glob.has_magic(basename) or basename == "**" or not dirname:
        yield from (p for p in glob.iglob(pattern, recursive=True) if os.path.isfile(p))
        return
    match = re.compile(fnmatch.translate(os.path.normcase(basename))).match
    hidden = basename.startswith(".")
    if glob.has_magic(dirname):
        folders: Iterable[str] = (d for d in glob.iglob(dirname, recursive=True) if os.path.isdir(d))
    else:
        folders = [dirname]
    for folder in folders:
        try:
            entries = os.scandir(folder)
        except OSError:  # as glob: a folder that is not there matches nothing
            continue
        with entries:
            for entry in entries:
                name = entry.name
                if (hidden or not name.startswith(".")) and match(os.path.normcase(name)) and entry.is_file():
                    yield os.path.join(folder, name)


def expand(root: Path, patterns: str | Iterable[str], **fields: str) -> SortedPaths:
    """Sorted files matching glob patterns relative to `root` (after `{field}` substitution)."""
    if isinstance(patterns, str):
        patterns = [patterns]
    folders, found = _Folders(), _Chunks()
    for pattern in patterns:
        # the pattern is a normalised Path, so the matches are too: equal files, equal strings
        for match in _glob_files(str(root / pattern.format(**fields))):
            folder, name = os.path.split(match)
            found.append(folders.id(folder), os.fsencode(name))
    ids, names = found.arrays()
    order = _path_order(folders.paths, ids, names)
    ids, names = ids[order], names[order]
    # a file two patterns match is listed once: equal files are neighbours now
    first = np.ones(len(names), dtype=bool)
    first[1:] = (ids[1:] != ids[:-1]) | (names[1:] != names[:-1])
    return SortedPaths(folders.paths, ids[first], names[first])


class ImageIndex(Mapping[str, Path]):
    """Image stem and file name -> path of the first image in listing order that has it.

    `files` are the images in listing order; `keys` the sorted distinct names and stems, each
    with the position in `files` of the image it stands for."""

    def __init__(self, files: SortedPaths, keys: np.ndarray, file_of_key: np.ndarray):
        self._files, self._keys, self._file_of_key = files, keys, file_of_key

    def _find(self, key: str) -> int | None:
        encoded = os.fsencode(key)
        # numpy would cut a longer needle to the keys' width, and drops trailing NULs
        if len(encoded) > self._keys.itemsize or b"\x00" in encoded:
            return None
        at = int(np.searchsorted(self._keys, encoded))
        if at < len(self._keys) and self._keys[at] == encoded:
            return int(self._file_of_key[at])
        return None

    def __getitem__(self, key: str) -> Path:
        found = self._find(key) if isinstance(key, str) else None
        if found is None:
            raise KeyError(key)
        return self._files[found]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._find(key) is not None

    def __iter__(self) -> Iterator[str]:
        return (os.fsdecode(k) for k in self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _listed_images(root: Path, folders: Iterable[str], fields: dict[str, str]) -> SortedPaths:
    """The images of the folders (globs allowed) in listing order: folders as given, a glob's
    folders sorted, names sorted within a folder."""
    listed, found = _Folders(), _Chunks()
    for folder in folders:
        for directory in sorted(glob.glob(str(root / folder.format(**fields)))):
            start = len(listed.paths)
            folder_id = listed.id(directory)
            if folder_id < start:  # listed already (two globs match it): its images are indexed
                continue
            with os.scandir(directory) as entries:
                for entry in entries:
                    if os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                        found.append(folder_id, os.fsencode(entry.name))
    ids, names = found.arrays()
    order = np.lexsort((names, ids))  # ids grow in listing order: sort the names per folder
    return SortedPaths(listed.paths, ids[order], names[order])


def _stems(names: np.ndarray) -> np.ndarray:
    return np.array([os.path.splitext(n)[0] for n in names], dtype=names.dtype)


def image_index(root: Path, folders: str | Iterable[str], **fields: str) -> ImageIndex:
    """Map image stem and file name -> path over the given image folders (globs allowed); the
    first in sorted order wins."""
    if isinstance(folders, str):
        folders = [folders]
    files = _listed_images(root, folders, fields)
    names = files.names
    keys = np.concatenate([names, *(_stems(names[i : i + _CHUNK]) for i in range(0, len(names), _CHUNK))])
    # each image sets its name, then its stem: a key goes to the first setter
    setter = np.concatenate([np.arange(len(names)) * 2, np.arange(len(names)) * 2 + 1])
    order = np.lexsort((setter, keys))
    keys, setter = keys[order], setter[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return ImageIndex(files, keys[first], (setter[first] // 2).astype(np.int32))


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


# names of the separators a caption table's header is checked against, for the hint that a
# table was read with the wrong one
_SEPARATOR_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}


def caption_table_rows(
    path: Path, separator: str, path_column: str, caption_columns: Sequence[str], skips: SkipLog
) -> Iterator[tuple[int, str, list[str]]]:
    """(line, image path, non-empty captions in column order) of every well-formed row of a
    caption table, read from the file row by row (memory does not grow with the table).
    Column names match case-insensitively. A header without the columns is an error naming the
    table and its header; a row of the wrong width, without a path or without any caption is a
    counted skip. Python's csv module reads the quoting pandas writes (a caption holding the
    separator, a quote or a newline comes back intact)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=separator, strict=True)
        try:
            yield from _caption_rows(path, reader, separator, path_column, list(caption_columns), skips)
        except UnicodeDecodeError as exc:
            # the text is decoded ahead of the rows, so no line number: the byte offset is in exc
            raise FormatError(path, f"not UTF-8 text ({exc})") from None
        except csv.Error as exc:
            name = _SEPARATOR_NAMES.get(separator, repr(separator))
            raise FormatError(path, f"malformed {name}-separated text ({exc})", reader.line_num) from None


def _caption_columns(
    path: Path, header: list[str] | None, separator: str, path_column: str, caption_columns: list[str]
) -> tuple[int, list[int]]:
    """Positions of the path column and the caption columns, or FormatError naming the header."""
    if header is None:
        raise FormatError(path, "empty caption table (no header)")
    names = [h.strip().lower() for h in header]
    missing = [k for k in (*caption_columns, path_column) if k.lower() not in names]
    if missing:
        hint = ""
        others = [s for s in _SEPARATOR_NAMES if s != separator and len(header) == 1 and s in header[0]]
        if others:
            hint = (
                f" (is it {_SEPARATOR_NAMES[others[0]]}-separated? it is read as"
                f" {_SEPARATOR_NAMES.get(separator, repr(separator))}-separated)"
            )
        raise FormatError(path, f"header {header!r} lacks column(s) {', '.join(map(repr, missing))}{hint}", 1)
    return names.index(path_column.lower()), [names.index(c.lower()) for c in caption_columns]


def _caption_rows(
    path: Path, reader, separator: str, path_column: str, caption_columns: list[str], skips: SkipLog
) -> Iterator[tuple[int, str, list[str]]]:
    header = next(reader, None)
    path_col, caption_cols = _caption_columns(path, header, separator, path_column, caption_columns)
    width = len(header or ())
    for row in reader:
        line = reader.line_num
        if not row or all(not field.strip() for field in row):
            continue
        if len(row) != width:
            skips.skip(FormatError(path, f"row has {len(row)} fields, the header {width}", line), "row")
            continue
        image = row[path_col].strip()
        captions = [caption for caption in (row[c].strip() for c in caption_cols) if caption]
        if not image or not captions:
            empty = path_column if not image else "caption"
            skips.skip(FormatError(path, f"row has an empty {empty}", line), "row")
            continue
        yield line, image, captions
