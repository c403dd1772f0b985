"""The Hugging Face release of RemoteCLIP's training data (`gzqy1026/RemoteCLIP`): caption
tables plus zipped images.

The tables are named `.csv` but are tab-separated, may start with a UTF-8 BOM, and have a
header with `title` (the caption) and `filename` (OpenCLIP's `--csv-separator '\\t'
--csv-caption-key title --csv-img-key filename` convention). There is one row per
(image, caption), so an image's captions are the rows that share its file name:

    title<TAB>filename
    many planes are parked next to a long building in an airport .<TAB>rsicd_airport_1.png

Rows are grouped per (split, file name), captions in file order. File names carry the
source as a prefix (`rsicd_`, `rsitmd_`, `ucm_`; the DET/SEG prefixes are undocumented,
datasets.md 6) and are looked up under the `images` folders, first as a relative path and
then by name anywhere below them, because the zips' inner layout is not documented.

`tables` are glob patterns relative to the root. A pattern with `{split}` is read once per
selected split (the release keeps `csv_file/train/` and `csv_file/test/`); rows of a pattern
without it are "train", like other parsers' files without split lists. The file is read
with Python's csv module because pandas, which wrote and reads these files for OpenCLIP,
quotes fields the same way (a caption holding a quote or a tab comes back intact).

Rule `ret_captions` (RET): one `{"image", "captions", "split"}` per image, written to
results/captions/{dataset}.jsonl; `eval_split` reads its test split through the same function.
"""

from __future__ import annotations

import csv
import glob
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..imageio import IMAGE_EXTENSIONS
from .base import FormatError, SkipLog
from .common import expand

log = logging.getLogger(__name__)

DEFAULTS = {
    "splits": ["train"],
    "tables": ["csv_file/{split}/*.csv"],
    "images": ["."],
    "caption_key": "title",
    "image_key": "filename",
}


def tables_by_split(root: Path, patterns: str | list[str], splits: list[str]) -> list[tuple[Path, str]]:
    """(table, split) pairs in a stable order; FormatError for a pattern that finds nothing."""
    if isinstance(patterns, str):
        patterns = [patterns]
    found: list[tuple[Path, str]] = []
    for pattern in patterns:
        wanted = splits if "{split}" in pattern else (["train"] if "train" in splits else [])
        for split in wanted:
            files = expand(root, pattern, split=split)
            if not files:
                raise FormatError(root / pattern.format(split=split), "no caption table matches this pattern")
            found += [(f, split) for f in files if (f, split) not in found]
    return found


class ImageLookup:
    """Finds a table's `filename` below the image folders: as a relative path, else by name."""

    def __init__(self, root: Path, folders: str | list[str]):
        self.root = root
        folders = [folders] if isinstance(folders, str) else list(folders)
        self.bases = [Path(b) for f in folders for b in sorted(glob.glob(str(root / f))) if Path(b).is_dir()]
        self._by_name: dict[str, Path] | None = None
        self.duplicates = 0

    def __call__(self, filename: str) -> Path | None:
        relative = Path(filename)
        if not relative.is_absolute() and ".." not in relative.parts:
            for base in self.bases:
                if (base / relative).is_file():
                    return base / relative
        return self._index().get(relative.name)

    def _index(self) -> dict[str, Path]:
        if self._by_name is None:
            self._by_name = {}
            for base in self.bases:
                for path in _images_below(base):
                    if self._by_name.setdefault(path.name, path) != path:
                        self.duplicates += 1
        return self._by_name


def _images_below(folder: Path) -> Iterator[Path]:
    """Image files below `folder` in sorted order, skipping hidden folders such as `.archives`."""
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            yield from _images_below(path)
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            yield path


def read_table(path: Path, caption_key: str, image_key: str, skips: SkipLog) -> Iterator[tuple[int, str, str]]:
    """(line, file name, caption) of every well-formed row; malformed rows are counted skips."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"not UTF-8 text ({exc})") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise FormatError(path, "empty caption table (no header)")
        names = [h.strip().lower() for h in header]
        missing = [k for k in (caption_key, image_key) if k.lower() not in names]
        if missing:
            hint = " (is it comma-separated? the release uses tabs)" if len(header) == 1 and "," in header[0] else ""
            raise FormatError(path, f"header {header!r} lacks column(s) {', '.join(map(repr, missing))}{hint}", 1)
        caption_col, image_col = names.index(caption_key.lower()), names.index(image_key.lower())
        for row in reader:
            line = reader.line_num
            if not row or all(not field.strip() for field in row):
                continue
            if len(row) != len(header):
                skips.skip(FormatError(path, f"row has {len(row)} fields, the header {len(header)}", line), "row")
                continue
            filename, caption = row[image_col].strip(), row[caption_col].strip()
            if not filename or not caption:
                skips.skip(
                    FormatError(path, f"row has an empty {'filename' if not filename else 'caption'}", line), "row"
                )
                continue
            yield line, filename, caption
    except csv.Error as exc:
        raise FormatError(path, f"malformed tab-separated text ({exc})", reader.line_num) from None


def parse(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[dict]:
    """Yield {"image", "captions", "split"} per image of the selected splits, in table order."""
    opts = {**DEFAULTS, **options}
    lookup = ImageLookup(root, opts["images"])
    # grouped across tables: an image whose captions are spread over two tables is still one image
    grouped: dict[tuple[str, str], tuple[Path, int, list[str]]] = {}
    for table, split in tables_by_split(root, opts["tables"], list(opts["splits"])):
        for line, filename, caption in read_table(table, opts["caption_key"], opts["image_key"], skips):
            grouped.setdefault((split, filename), (table, line, []))[2].append(caption)
    for (split, filename), (table, line, captions) in grouped.items():
        image = lookup(filename)
        if image is None:
            skips.skip(FormatError(table, f"image file {filename!r} not found", line), "image")
            continue
        yield {"image": str(image.relative_to(root)), "captions": captions, "split": split}
    if lookup.duplicates:
        log.warning(
            "%s: %d image file names occur more than once below %s; the first in sorted order is used",
            root,
            lookup.duplicates,
            opts["images"],
        )
