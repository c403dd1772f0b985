"""Image bytes stored inside container files: a member of a tar, a row of a Parquet file.

A caption row of a web corpus (formats.webdataset, formats.parquet) says where its image is:
`"stored": {"tar": path, "offset": n, "size": n}` (the member's data, read with one `os.pread`)
or `{"parquet": path, "column": name, "row_group": g, "row": r}` (the row group's image column
is read once and its rows served from a small cache, as rows of a chunk come in file order).
`imageio.load_sample_rgb` decodes what this returns; no stage decodes stored images otherwise.

Per process, at most `MAX_OPEN` container files are open (the least recently used is closed
first) and `MAX_ROW_GROUPS` row groups' image columns are held. Tars are read with `pread`,
which has no file position, so worker processes forked with open files do not disturb each
other. Hugging Face `datasets` writes image tables in row groups of 100 rows
(`datasets.config.PARQUET_ROW_GROUP_SIZE_FOR_IMAGE_DATASETS`, read in its source; whether
Git-10M's files were written so is unverified), so two cached row groups stay small; a worker
that gets a batch of rows from the middle of a row group reads that group once more.

No stage of its own: `hash_training_source` and `build_shards` read through it.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .errors import FormatError

MAX_OPEN = 16  # container files open at once per process
MAX_ROW_GROUPS = 2  # Parquet row groups' image columns held per process


def container(stored: dict) -> str:
    """The path of the file that holds the image."""
    if "tar" in stored:
        return stored["tar"]
    if "parquet" in stored:
        return stored["parquet"]
    raise ValueError(f"stored image {stored!r}: neither 'tar' nor 'parquet'")


def position(stored: dict) -> str:
    """Where in its container the image is, as text (part of the pHash cache's identity)."""
    if "tar" in stored:
        return f"{stored['offset']}+{stored['size']}"
    return f"{stored.get('column', 'image')}/{stored['row_group']}/{stored['row']}"


class _LRU(OrderedDict):
    """A bounded mapping that calls `close` on what it drops."""

    def __init__(self, limit: int, close):
        super().__init__()
        self.limit, self.close = limit, close

    def get_or_open(self, key, opener):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = opener()
        self[key] = value
        while len(self) > self.limit:
            _, dropped = self.popitem(last=False)
            self.close(dropped)
        return value


def _close_file(handle: Any) -> None:
    if isinstance(handle, int):
        os.close(handle)
    else:
        getattr(handle, "close", lambda: None)()


_files = _LRU(MAX_OPEN, _close_file)
_row_groups = _LRU(MAX_ROW_GROUPS, lambda _: None)


def _identity(path: str) -> tuple[str, int, int]:
    """The path with its size and mtime: a file rewritten in place is opened afresh."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FormatError(path, "container file missing") from None
    return path, st.st_size, st.st_mtime_ns


def stored_bytes(stored: dict) -> bytes:
    """The image's bytes; FormatError naming the container and the position otherwise."""
    if "tar" in stored:
        return _tar_bytes(stored["tar"], int(stored["offset"]), int(stored["size"]))
    if "parquet" in stored:
        return _parquet_bytes(stored)
    raise ValueError(f"stored image {stored!r}: neither 'tar' nor 'parquet'")


def _tar_bytes(path: str, offset: int, size: int) -> bytes:
    fd = _files.get_or_open(("tar", *_identity(path)), lambda: os.open(path, os.O_RDONLY))
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise FormatError(path, f"member at byte {offset} truncated: {len(data)} of {size} bytes (changed since read?)")
    return data


def open_parquet(path: str | Path):
    """pyarrow's ParquetFile; FormatError naming the file when it is not one (pyarrow is
    imported here, on first use: only a Parquet source needs it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise FormatError(path, f"not a readable Parquet file ({exc})") from None


def _parquet_bytes(stored: dict) -> bytes:
    import pyarrow as pa

    path, column = stored["parquet"], stored.get("column", "image")
    group, row = int(stored["row_group"]), int(stored["row"])
    identity = _identity(path)
    parquet = _files.get_or_open(("parquet", *identity), lambda: open_parquet(path))

    def read_group() -> list:
        try:
            values = parquet.read_row_group(group, columns=[column]).column(column)
        except (pa.ArrowException, OSError, IndexError, KeyError) as exc:
            raise FormatError(path, f"row group {group}, column {column!r} unreadable ({exc})") from None
        if pa.types.is_struct(values.type):
            values = values.combine_chunks().field("bytes")
        return values.to_pylist()

    images = _row_groups.get_or_open((*identity, column, group), read_group)
    if not 0 <= row < len(images):
        raise FormatError(path, f"row group {group} has {len(images)} rows, not row {row}")
    data = images[row]
    if not data:
        raise FormatError(path, f"row group {group}, row {row}: no image bytes")
    return data
