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

Memory does not grow with the tables: each is read row by row from the file, and the rows
are grouped, and the images indexed by name, in a scratch SQLite database (Python's
`sqlite3`, in the temporary folder, TMPDIR) that is deleted when the parse ends. SQLite does
the grouping on disk with its small page cache; the grouped images come back in order of
their first row, as an in-memory dict would give them.

`tables` are glob patterns relative to the root. A pattern with `{split}` is read once per
selected split (the release keeps `csv_file/train/` and `csv_file/test/`); rows of a pattern
without it are "train", like other parsers' files without split lists. The file is read
with Python's csv module because pandas, which wrote and reads these files for OpenCLIP,
quotes fields the same way (a caption holding a quote or a tab comes back intact).

Rule `ret_captions` (RET): one `{"image", "captions", "split"}` per image, written to
results/captions/{dataset}.jsonl; `eval_split` reads its test split through the same function.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..imageio import IMAGE_EXTENSIONS
from .base import FormatError, SkipLog
from .common import caption_table_rows, expand

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
    """Finds a table's `filename` below the image folders: as a relative path, else by name
    (the first in sorted order), through a name index kept in the scratch database. Paths are
    strings here (os.path): one Path per image found, not one per file walked or tried."""

    def __init__(self, root: Path, folders: str | list[str], db: sqlite3.Connection):
        self.root = root
        folders = [folders] if isinstance(folders, str) else list(folders)
        self.bases = [b for f in folders for b in sorted(glob.glob(str(root / f))) if os.path.isdir(b)]
        self.db = db
        # created now, filled on the first miss: no schema change while the grouped rows are read
        db.execute("CREATE TABLE names (name TEXT PRIMARY KEY, path TEXT NOT NULL)")
        self._indexed = False
        self.duplicates = 0

    def __call__(self, filename: str) -> Path | None:
        if not filename.startswith("/") and ".." not in filename.split("/"):
            for base in self.bases:
                candidate = os.path.join(base, filename)
                if os.path.isfile(candidate):
                    return Path(candidate)
        self._index()
        name = os.path.basename(filename.rstrip("/"))
        row = self.db.execute("SELECT path FROM names WHERE name = ?", (name,)).fetchone()
        return Path(row[0]) if row else None

    def _index(self) -> None:
        if self._indexed:
            return
        self._indexed = True
        for base in self.bases:
            for name, path in _images_below(base):
                if self.db.execute("INSERT OR IGNORE INTO names VALUES (?, ?)", (name, path)).rowcount:
                    continue
                if self.db.execute("SELECT path FROM names WHERE name = ?", (name,)).fetchone()[0] != path:
                    self.duplicates += 1


def _images_below(folder: str) -> Iterator[tuple[str, str]]:
    """(name, path) of the image files below `folder` in sorted order, skipping hidden folders
    such as `.archives`. A folder's entries are held as names while it is walked (a zip of the
    release unpacks a hundred thousand images into one folder)."""
    for name in sorted(os.listdir(folder)):
        if name.startswith("."):
            continue
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            yield from _images_below(path)
        elif os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
            yield name, path


def read_table(path: Path, caption_key: str, image_key: str, skips: SkipLog) -> Iterator[tuple[int, str, str]]:
    """(line, file name, caption) of every well-formed row, read from the file row by row;
    malformed rows are counted skips (common.caption_table_rows with tabs and one caption column)."""
    for line, filename, captions in caption_table_rows(path, "\t", image_key, [caption_key], skips):
        yield line, filename, captions[0]


@contextlib.contextmanager
def scratch_database() -> Iterator[sqlite3.Connection]:
    """A throw-away SQLite database in the temporary folder, without a journal (nothing in it
    outlives the parse)."""
    with tempfile.TemporaryDirectory(prefix="remoteclip-hf_tsv-") as folder:
        db = sqlite3.connect(Path(folder) / "rows.sqlite", isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute("PRAGMA temp_store = FILE")
            db.execute("BEGIN")
            yield db
        finally:
            db.close()


BATCH_ROWS = 10_000  # rows held in Python before they go to the scratch database together


class Grouped:
    """Captions grouped per (split, file name) in the scratch database, images numbered in
    order of their first row: an image whose captions are spread over two tables is one image."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        db.execute(
            "CREATE TABLE images (id INTEGER PRIMARY KEY, split TEXT, filename TEXT, tab INTEGER, line INTEGER,"
            " UNIQUE (split, filename))"
        )
        db.execute("CREATE TABLE captions (image INTEGER, caption TEXT)")
        self.tables: list[Path] = []
        # rows not yet in the database: the (split, filename, tab, line) of each image's first row
        # in a run of rows, and every row's (caption, split, filename)
        self._images: list[tuple[str, str, int, int]] = []
        self._captions: list[tuple[str, str, str]] = []
        self._last: tuple[str, str] | None = None

    def add_table(self, table: Path) -> int:
        self.tables.append(table)
        return len(self.tables) - 1

    def add(self, tab: int, split: str, line: int, filename: str, caption: str) -> None:
        if self._last != (split, filename):
            # the rows of one image usually follow each other: one insert per image, not per row
            self._images.append((split, filename, tab, line))
            self._last = (split, filename)
        self._captions.append((caption, split, filename))
        if len(self._captions) >= BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        """The pending rows in two statements that SQLite runs over the whole batch
        (executemany), in row order: an image's id is that of its first row (INSERT OR IGNORE),
        its captions keep their row order (rowid)."""
        self.db.executemany(
            "INSERT OR IGNORE INTO images (split, filename, tab, line) VALUES (?, ?, ?, ?)", self._images
        )
        self.db.executemany(
            "INSERT INTO captions SELECT id, ? FROM images WHERE split = ? AND filename = ?", self._captions
        )
        self._images, self._captions = [], []

    def index(self) -> None:
        """Once every row is in: the index that reads an image's captions in row order."""
        self._flush()
        self.db.execute("CREATE INDEX captions_by_image ON captions (image)")

    def __iter__(self) -> Iterator[tuple[str, str, Path, int, list[str]]]:
        """(split, file name, table, line of the first row, captions in row order) per image."""
        rows = self.db.execute(
            "SELECT i.id, i.split, i.filename, i.tab, i.line, c.caption FROM images i"
            " JOIN captions c ON c.image = i.id ORDER BY i.id, c.rowid"
        )
        current, captions = None, []
        for image, split, filename, tab, line, caption in rows:
            if current is not None and image != current[0]:
                yield current[1], current[2], self.tables[current[3]], current[4], captions
                captions = []
            current = (image, split, filename, tab, line)
            captions.append(caption)
        if current is not None:
            yield current[1], current[2], self.tables[current[3]], current[4], captions


def parse(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[dict]:
    """Yield {"image", "captions", "split"} per image of the selected splits, in table order."""
    opts = {**DEFAULTS, **options}
    with scratch_database() as db:
        grouped = Grouped(db)
        for table, split in tables_by_split(root, opts["tables"], list(opts["splits"])):
            tab = grouped.add_table(table)
            for line, filename, caption in read_table(table, opts["caption_key"], opts["image_key"], skips):
                grouped.add(tab, split, line, filename, caption)
        lookup = ImageLookup(root, opts["images"], db)
        grouped.index()
        for split, filename, table, line, captions in grouped:
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
