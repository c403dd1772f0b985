"""Parquet files with the image bytes inside (Git-10M, and any Hugging Face `datasets` release
in Parquet): one caption row per table row, with where its image lies, so nothing is unpacked.

Read with pyarrow one row group at a time, caption columns only (`ParquetFile.read_row_group`
with `columns=`): the image bytes are not read here, and memory is one row group's captions,
whatever the file's size. The image is read back later, by row group and row, through
`imageio.load_sample_rgb`.

Options:
- `files`: glob patterns relative to the dataset root (sorted, read in that order);
- `image_column`: the image; either a struct with a `bytes` field, as Hugging Face `datasets`
  writes its `Image` feature ({"bytes", "path"}), or plain binary;
- `captions`: caption columns in order; a value is a string or a list of strings, and an
  image's captions are those of every column in order, repeats removed.

Rows: `{"image": "<file>/<row number in the file>", "captions", "split": "train", "stored":
{"parquet": <file>, "column": <image column>, "row_group": g, "row": r}}`, `<file>` relative to
the dataset root (the caption stage puts the root in front, as for image files).

Bad input: a file pyarrow cannot open, or one without the image column or a caption column, is
a FormatError naming the file and the columns it has; a row without any caption is a counted
skip; an image that does not decode is counted where it is decoded (hash, shard stages).

Git-10M (Hub `lcybuaa/Git-10M`, CC-BY-NC-ND-4.0): the issue and the project's field notes
(shared/reference/field-2026.md, from the dataset card's mirrors and the Text2Earth README) give
the fields image, img_name, img_quality_score, caption, caption_length, resolution,
Google_location; the card itself could not be read with the search tools here and no file of it
was opened, so the column names (`image` as a `datasets` Image struct, `caption` a string) are
unverified. Its catalogue entry would say `captions: [caption]`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..stored import open_parquet
from .base import FormatError, SkipLog
from .common import expand

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "files": ["**/*.parquet"],
    "image_column": "image",
    "captions": ["caption"],
}


def image_bytes_column(path: Path, schema, column: str) -> None:
    """FormatError unless `column` holds image bytes (binary, or a struct with `bytes`)."""
    import pyarrow as pa

    names = schema.names
    if column not in names:
        raise FormatError(path, f"no image column {column!r} (columns: {', '.join(names)})")
    kind = schema.field(column).type
    if pa.types.is_struct(kind):
        if kind.get_field_index("bytes") < 0:
            raise FormatError(path, f"image column {column!r} is a struct without 'bytes' ({kind})")
    elif not (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)):
        raise FormatError(path, f"image column {column!r} holds {kind}, not image bytes")


def parse(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[dict]:
    """Yield one row per table row of every file the patterns match, in sorted file order."""
    opts = {**DEFAULTS, **options}
    files = expand(root, opts["files"])
    if not len(files):
        raise FormatError(root / str(opts["files"]), "no Parquet file matches these patterns")
    captions = list(opts["captions"])
    for path in files:
        yield from read_file(root, Path(path), opts["image_column"], captions, skips)


def read_file(root: Path, path: Path, image_column: str, captions: list[str], skips: SkipLog) -> Iterator[dict]:
    """The rows of one file, a row group at a time."""
    import pyarrow as pa

    parquet = open_parquet(path)
    schema = parquet.schema_arrow
    image_bytes_column(path, schema, image_column)
    missing = [c for c in captions if c not in schema.names]
    if missing:
        raise FormatError(
            path, f"no caption column {', '.join(map(repr, missing))} (columns: {', '.join(schema.names)})"
        )
    rel = path.relative_to(root).as_posix()
    first = 0
    for group in range(parquet.num_row_groups):
        try:
            table = parquet.read_row_group(group, columns=captions)
        except (pa.ArrowException, OSError) as exc:
            raise FormatError(path, f"unreadable row group {group} ({exc})") from None
        columns = [table.column(c).to_pylist() for c in captions]
        for row in range(table.num_rows):
            texts = _captions(col[row] for col in columns)
            number = first + row
            if not texts:
                skips.skip(FormatError(path, f"row {number} has no caption ({', '.join(captions)})"), "image")
                continue
            yield {
                "image": f"{rel}/{number}",
                "captions": texts,
                "split": "train",
                "stored": {"parquet": rel, "column": image_column, "row_group": group, "row": row},
            }
        first += table.num_rows


def _captions(values) -> list[str]:
    out: list[str] = []
    for value in values:
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str) and item.strip() and item.strip() not in out:
                out.append(item.strip())
    return out
