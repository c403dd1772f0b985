"""Caption tables beside unpacked image folders (SkyScript): one CSV/TSV row per image, its
path in one column and one or several captions in others.

SkyScript's release (wangzhecheng/SkyScript README and src/training/data.py, read at commits
15d5986 and c059810):
- verified: the tables have the columns `filepath` ("the relative path to the image file"),
  `title` (caption of the focus object) and `title_multi_objects` (focus and surrounding
  objects); they are comma-separated (the README trains with `--csv-separator=','
  --csv-img-key filepath`) and read with `pandas.read_csv(sep=...)`, so pandas' quoting applies;
  an image's path is `os.path.join(root_data_dir, filepath)` where the root holds the unpacked
  zips `images2.zip` ... `images7.zip` (the README: the full path is `<root>/images2/....jpg`),
  so `filepath` starts with the zip's folder and `images` is "." for that layout.
- verified, by name only: the tables `SkyScript_train_unfiltered_5M.csv`,
  `SkyScript_train_top{30,50}pct_filtered_by_CLIP_{openai,laion_RS}.csv`,
  `SkyScript_{val_5K,test_30K}_filtered_by_CLIP_{openai,laion_RS}.csv`, and since 2024-12 the
  LLM-polished `..._language_polished.csv` (full 5M, top 50 %, top 30 % by CLIP_laion_RS).
- not verified (the tables are on S3, not in the repository): the polished tables' column
  names, whether `filepath` is unique within a table, and the exact prefix of `filepath` (the
  README's example only). A header without the configured columns is an error that lists the
  columns the table has, so a wrong guess shows on the first run.

Options (DEFAULTS): `tables` glob patterns relative to the dataset root (default: the table
SkyScript's ViT-B-32 checkpoint was trained on; tables listed together that share images give
those images the captions of each, repeated where the rows repeat); `images` the folder
(relative to the root) the paths are relative to; `path_column`; `captions` the caption
columns in order (empty cells are dropped, a row with none is a counted skip); `separator`.

Rows are read one at a time (common.caption_table_rows) and grouped per path in hf_tsv's
scratch SQLite database, so memory does not grow with the table and an image listed in two
tables (or twice in one) is one image with the captions of all its rows, in row order. Every
row is "train": web corpora are training sources only. Bad input: a path that is absolute or
has a `..` part is a counted skip ("row") as it would leave the root; a path naming no file
is a counted skip ("image"); a table without the configured columns is an error naming the
table and its header.

Rule `ret_captions` (group WEB, like RET): one `{"image", "captions", "split"}` per image.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import FormatError, SkipLog
from .common import caption_table_rows
from .hf_tsv import Grouped, scratch_database, tables_by_split

# the default table is the one SkyScript's ViT-B-32 checkpoint (SkyCLIP_ViT_B32_top50pct) was
# trained on, per its README; the release's tables overlap (top 30 % is in top 50 % is in the
# unfiltered 5M) and include the val/test tables, so a glob over all of them would list an
# image once per table (its captions repeated) and read SkyScript's test split
DEFAULTS: dict[str, Any] = {
    "tables": ["SkyScript_train_top50pct_filtered_by_CLIP_openai.csv"],
    "images": ".",
    "path_column": "filepath",
    "captions": ["title"],
    "separator": ",",
}

SPLIT = "train"


def outside_root(path: str) -> bool:
    """True for a path that is absolute (POSIX, Windows drive) or climbs out of its folder
    (a `..` part, on either separator). Substring tests first: millions of rows pass them."""
    if path.startswith(("/", "\\")) or path[1:2] == ":":
        return True
    return ".." in path and ".." in path.replace("\\", "/").split("/")


def image_path(images: str, path: str) -> str:
    """The image's POSIX path relative to the dataset root."""
    if "\\" in path:
        path = path.replace("\\", "/")
    return posixpath.normpath(path if images in (".", "") else posixpath.join(images.replace(os.sep, "/"), path))


def parse(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[dict]:
    """Yield {"image", "captions", "split"} per image, in order of its first row."""
    opts = {**DEFAULTS, **options}
    captions = [opts["captions"]] if isinstance(opts["captions"], str) else list(opts["captions"])
    if not captions:
        raise ValueError("caption_table: `captions` names no column")
    if not isinstance(opts["images"], str):
        raise ValueError(f"caption_table: `images` is one folder the paths are relative to, not {opts['images']!r}")
    with scratch_database() as db:
        grouped = Grouped(db)
        for table, _ in tables_by_split(root, opts["tables"], [SPLIT]):
            tab = grouped.add_table(table)
            for line, path, texts in caption_table_rows(table, opts["separator"], opts["path_column"], captions, skips):
                if outside_root(path):
                    skips.skip(FormatError(table, f"path {path!r} points outside the dataset root", line), "row")
                    continue
                for text in texts:
                    grouped.add(tab, SPLIT, line, path, text)
        grouped.index()
        base = str(root)  # os.path on strings: one Path per image costs more than the stat
        for split, path, table, line, texts in grouped:
            image = image_path(opts["images"], path)
            if not os.path.isfile(os.path.join(base, image)):
                skips.skip(FormatError(table, f"image file {image!r} not found", line), "image")
                continue
            yield {"image": image, "captions": texts, "split": split}
