"""The member index of a shard: where each sample's members lie inside the tar, so a reader seeks
straight to them instead of scanning tar headers at start-up (77 us per sample, about 6.5 min
per rank at 5 M samples).

One `.idx.npy` file beside each tar (`index_path`): a numpy structured array with one row per
sample key, in the tar's order, holding the key and, for every member kind (extension) the
shard has, the member's data offset and size in bytes (-1 where a sample lacks that kind).
`np.save` writes no timestamps, so the same tar gives the same index bytes; `np.load` reads it
without pickle. `build_shards` writes the index when it writes the tar, by scanning the tar it
just wrote (`scan_tar`), so the offsets are tarfile's own; a shard written elsewhere is scanned
once by the reader (remoteclip.train.data) and its index written beside it.
"""

from __future__ import annotations

import io
import logging
import os
import tarfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

INDEX_SUFFIX = ".idx.npy"
PAIR = np.dtype([("offset", "<i8"), ("size", "<i8")])  # one member kind's columns


class ShardFileError(RuntimeError):
    """A shard file that cannot be opened, read or indexed: the shard's fault, not a sample's."""


def index_path(shard: str | Path) -> Path:
    """The index beside a shard: shard-000001.tar -> shard-000001.idx.npy."""
    return Path(_index_file(str(shard)))


def _index_file(shard: str) -> str:
    # strings, not pathlib: a start-up names thousands of them
    return shard.removesuffix(".tar") + INDEX_SUFFIX


def index_array(members: list[tuple[str, int, int]]) -> np.ndarray:
    """The index of (member name, data offset, size) triples: one row per key (the name up to
    its first dot, as WebDataset splits it), in order of first appearance."""
    rows: dict[str, dict[str, tuple[int, int]]] = {}
    for name, offset, size in members:
        base = name.rsplit("/", 1)[-1]
        key, _, kind = base.partition(".")
        rows.setdefault(name[: len(name) - len(base)] + key, {})[kind] = (offset, size)
    kinds = sorted({kind for parts in rows.values() for kind in parts})
    width = max((len(k.encode()) for k in rows), default=1)
    dtype = np.dtype([("key", f"S{width}")] + [(kind, PAIR) for kind in kinds])
    array = np.zeros(len(rows), dtype)
    array["key"] = [k.encode() for k in rows]
    for kind in kinds:
        pairs = [parts.get(kind, (-1, -1)) for parts in rows.values()]
        array[kind]["offset"] = [p[0] for p in pairs]
        array[kind]["size"] = [p[1] for p in pairs]
    return array


def kinds_of(index: np.ndarray) -> list[str]:
    return [name for name in index.dtype.names or () if name != "key"]


def members(index: np.ndarray, kind: str) -> np.ndarray:
    """(offset, size) of one member kind as an (n, 2) int64 view into the index, no copy: a
    start-up touches thousands of indexes, and numpy's nested field access costs ~50 us each."""
    index = np.ascontiguousarray(index)
    fields = index.dtype.fields
    if fields is None or index.dtype[kind] != PAIR:
        raise ShardFileError(f"a member index whose {kind!r} column is not (offset, size) int64: {index.dtype}")
    return np.ndarray(
        (len(index), 2), PAIR["offset"], buffer=index, offset=fields[kind][1], strides=(index.itemsize, 8)
    )


def data_end(index: np.ndarray) -> int:
    """The byte just past the last member's data: a tar shorter than this lost members."""
    ends = [int((m[:, 0] + m[:, 1]).max()) for m in (members(index, k) for k in kinds_of(index)) if len(m)]
    return max(ends, default=0)


def scan_tar(path: str | Path) -> np.ndarray:
    """Index a tar by reading its headers; a truncated or malformed tar raises ShardFileError."""
    members = []
    try:
        with tarfile.open(path, "r:") as tar:
            for info in tar:
                if info.isfile():
                    members.append((info.name, info.offset_data, info.size))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ShardFileError(f"shard {path}: not a readable tar ({type(exc).__name__}: {exc})") from exc
    index = index_array(members)
    size = Path(path).stat().st_size
    if data_end(index) > size:  # tarfile stops quietly where a truncated tar ends
        raise ShardFileError(f"shard {path}: truncated ({size} bytes, its members end at {data_end(index)})")
    return index


def write_index(index: np.ndarray, path: str | Path) -> None:
    """Write atomically: a reader never sees half an index."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, index, allow_pickle=False)
    os.replace(tmp, path)


# {.npy header: (dtype, rows)}: numpy parses each file's header with ast.literal_eval (~1.5 ms),
# the larger part of a start-up's time per shard; the shards of a run share a handful of headers
_HEADERS: dict[bytes, tuple[np.dtype, int]] = {}
NPY_MAGIC = b"\x93NUMPY"


def read_index(path: str | Path) -> np.ndarray:
    """np.load's result (read-only), with the header parsed once per distinct header."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:6] != NPY_MAGIC:
        raise ShardFileError(f"{path}: not a member index (.npy)")
    size_bytes = 2 if data[6] == 1 else 4  # format 1.0: a 2-byte header length; 2.0 and 3.0: 4
    start = 8 + size_bytes
    end = start + int.from_bytes(data[8:start], "little")
    header = data[:end]
    if header not in _HEADERS:
        array = np.load(io.BytesIO(data), allow_pickle=False)
        _HEADERS[header] = (array.dtype, len(array))
    dtype, rows = _HEADERS[header]
    return np.frombuffer(data, dtype, count=rows, offset=end)


def load_or_scan(shard: str | Path) -> np.ndarray:
    """The shard's index: from the file beside it (or beside the file a link points to), else
    scanned from the tar once, with a warning, and written beside it when the folder allows."""
    for candidate in (lambda: _index_file(str(shard)), lambda: _index_file(os.path.realpath(shard))):
        if os.path.isfile(candidate()):  # the link's target only where needed: realpath costs 60 us
            return read_index(candidate())
    shard = Path(shard)
    log.warning("shard %s has no member index (%s): scanning its tar headers once", shard, index_path(shard).name)
    index = scan_tar(shard)
    try:
        write_index(index, index_path(shard.resolve()))
    except OSError as exc:  # a read-only folder: indexed again at the next start
        log.warning("could not write the index of %s (%s); it is scanned again next time", shard, exc)
    return index
