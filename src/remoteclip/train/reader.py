"""Random access to the samples of thousands of shards, with memory and open files bounded.

- `ShardIndex`: every sample's shard, key and the offsets and sizes of its image and JSON
  members, in numpy arrays (about 60 bytes per sample plus its key, shared by the loader
  workers a rank forks), concatenated from the member index written beside each shard when it
  was built (remoteclip.shards.index): start-up reads one small file per shard instead of
  every tar header. A shard without an index (written elsewhere) is scanned once, with a
  warning. A shard that is missing, shorter than its manifest says or cut inside its members
  stops the run before it starts, named, unless `train.skip_bad_shards` says to train without
  it (then it is listed in settings.json and summary.json as `skipped_shards`).
- `OpenShards`: per process (the training process and each DataLoader worker) at most
  `train.open_shards` shard files open, the least recently used closed first; wids' LRUShards
  (webdataset's random-access reader) is the model, over plain files and os.pread. An error
  opening or reading a shard file is the shard's fault and stops the run with its name; only a
  sample whose bytes do not decode is replaced by the data set (remoteclip.train.data).
- `ensure_open_file_limit`: the file descriptors a rank needs for its loader workers (PyTorch
  passes every tensor a worker hands over as a file descriptor) and cached shards, checked
  against RLIMIT_NOFILE before the workers start: the soft limit is raised up to the hard one
  where that suffices, otherwise the error names the limit and the fix.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import resource
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..shards.index import ShardFileError, data_end, load_or_scan, members

log = logging.getLogger(__name__)
TAR_BLOCK = 512


class ShardsMissing(FileNotFoundError):
    pass


@dataclasses.dataclass
class ShardIndex:
    """Samples in shard order (the manifest's), each with both an image and a JSON member."""

    shards: list[str]
    shard: np.ndarray  # int32: each sample's shard
    keys: np.ndarray  # bytes: each sample's key (it seeds the sample's draws)
    jpg: np.ndarray  # int64 (n, 2): offset and size of the image member
    meta: np.ndarray  # int64 (n, 2): offset and size of the JSON member
    skipped: list[tuple[str, str]]  # (shard, why), with train.skip_bad_shards

    @classmethod
    def build(
        cls,
        shards: Sequence[str | Path],
        sizes: Sequence[int | None] | None = None,
        excluded: Sequence[frozenset[str]] | None = None,
        skip_bad: bool = False,
    ) -> ShardIndex:
        """The index of `shards` (in this order); `sizes`: each shard's size in bytes from its
        manifest; `excluded`: per shard the keys the run leaves out."""
        if not shards:
            raise ShardsMissing("no shards given")
        paths = [str(s) for s in shards]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing and not skip_bad:
            raise ShardsMissing(
                f"shards missing: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} ({len(missing)} of "
                f"{len(paths)}); the run does not start without them (train.skip_bad_shards: true trains on the rest)"
            )
        parts, bad = _read_indexes(
            paths,
            list(sizes) if sizes is not None else [None] * len(paths),
            list(excluded) if excluded is not None else [frozenset()] * len(paths),
        )
        if bad and not skip_bad:
            raise ShardFileError(
                f"{len(bad)} of {len(paths)} shards cannot be read, so the run does not start: "
                + "; ".join(why for _, why in bad[:3])
                + (" ..." if len(bad) > 3 else "")
                + " (train.skip_bad_shards: true trains on the rest)"
            )
        for path, why in bad:
            log.warning("skipped shard %s: %s", path, why)
        index = cls._concatenate(parts, bad)
        if not len(index):
            raise ShardsMissing(f"no readable samples in {len(paths)} shards ({len(bad)} skipped)")
        return index

    @classmethod
    def _concatenate(cls, parts: list[tuple[str, Usable]], skipped: list[tuple[str, str]]) -> ShardIndex:
        if not parts:
            return cls([], np.empty(0, np.int32), np.empty(0, "S1"), np.empty((0, 2)), np.empty((0, 2)), skipped)
        counts = [len(u.keys) for _, u in parts]
        return cls(
            [path for path, _ in parts],
            np.repeat(np.arange(len(parts), dtype=np.int32), counts),
            np.concatenate([u.keys for _, u in parts]),
            np.concatenate([u.jpg for _, u in parts]),
            np.concatenate([u.meta for _, u in parts]),
            skipped,
        )

    def key(self, i: int) -> str:
        return self.keys[i].decode()

    def __len__(self) -> int:
        return len(self.keys)


def _read_indexes(
    paths: list[str], sizes: list[int | None], excluded: list[frozenset[str]]
) -> tuple[list[tuple[str, Usable]], list[tuple[str, str]]]:
    """Each readable shard's samples, and (shard, why) for each that is not."""
    parts, bad = [], []
    for path, size, leave_out in zip(paths, sizes, excluded):
        try:
            parts.append((path, _usable_members(path, size, leave_out)))
        except (ShardFileError, OSError) as exc:
            bad.append((path, str(exc)))
    return parts, bad


class Usable(NamedTuple):
    """A shard's samples the run reads: keys, (offset, size) of the image and of the JSON."""

    keys: np.ndarray
    jpg: np.ndarray
    meta: np.ndarray


def _usable_members(path: str, size: int | None, excluded: frozenset[str]) -> Usable:
    """The shard's samples (an image and a JSON member) that the run keeps; ShardFileError when
    the file is not the one that was indexed or listed."""
    actual = os.stat(path).st_size
    if size is not None and actual != size:
        raise ShardFileError(f"shard {path}: {actual} bytes, its manifest says {size} (truncated or replaced)")
    index = load_or_scan(path)
    if data_end(index) > actual:
        raise ShardFileError(f"shard {path}: truncated ({actual} bytes, its members end at {data_end(index)})")
    names = index.dtype.names or ()
    if "jpg" not in names or "json" not in names:
        log.warning("shard %s has no jpg and json members: no samples from it", path)
        return Usable(index["key"][:0], np.empty((0, 2), np.int64), np.empty((0, 2), np.int64))
    usable = Usable(index["key"], members(index, "jpg"), members(index, "json"))
    keep = (usable.jpg[:, 1] >= 0) & (usable.meta[:, 1] >= 0)
    if excluded:
        listed = np.isin(usable.keys, np.array([k.encode() for k in excluded]))
        if int(listed.sum()) != len(excluded):
            raise ShardFileError(
                f"shard {path}: its manifest leaves out {len(excluded)} samples, the shard holds "
                f"{int(listed.sum())} of them (not the shard the manifest was written for)"
            )
        keep &= ~listed
    return usable if keep.all() else Usable(*(column[keep] for column in usable))


class OpenShards:
    """At most `capacity` shard files open in this process (wids' LRUShards over plain files)."""

    def __init__(self, paths: list[str], capacity: int):
        if capacity < 1:
            raise ValueError(f"train.open_shards must be at least 1, got {capacity}")
        self.paths, self.capacity = paths, capacity
        self._open: OrderedDict[int, int] = OrderedDict()
        self._pid = os.getpid()
        self.opened = 0  # files opened by this process: misses of the cache

    def read(self, shard: int, offset: int, size: int, name: str) -> bytes:
        """A member's bytes, checked against the tar header before them: a stale index or a
        shard cut short since it was indexed raises ShardFileError naming the shard."""
        path = self.paths[shard]
        try:
            data = os.pread(self._fd(shard), TAR_BLOCK + size, offset - TAR_BLOCK)
        except OSError as exc:
            raise ShardFileError(f"shard {path}: reading {name} failed ({exc})") from exc
        if len(data) != TAR_BLOCK + size:
            raise ShardFileError(
                f"shard {path}: {name} ends at byte {offset + size}, past the file's end: cut since it was indexed"
            )
        stored = data[:100].rstrip(b"\0")  # the header's name field (ustar: the last part; GNU: the first 100 bytes)
        expected = name.encode()
        if not stored or not (expected.startswith(stored) or expected.endswith(stored)):
            raise ShardFileError(
                f"shard {path}: the member at byte {offset} is {stored[:60]!r}, not {name}: the tar changed "
                f"since its index was written; delete {Path(path).name.removesuffix('.tar')}.idx.npy to index it again"
            )
        return data[TAR_BLOCK:]

    def _fd(self, shard: int) -> int:
        if self._pid != os.getpid():  # a forked loader worker: the parent's files are not its own
            self.close()
            self._pid = os.getpid()
        fd = self._open.get(shard)
        if fd is not None:
            self._open.move_to_end(shard)
            return fd
        while len(self._open) >= self.capacity:
            os.close(self._open.popitem(last=False)[1])
        try:
            fd = os.open(self.paths[shard], os.O_RDONLY)
        except OSError as exc:
            hint = ""
            if exc.errno == errno.EMFILE:
                soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                hint = f"; the open-file limit is {soft} (hard {hard}): raise it (ulimit -n) or lower train.open_shards"
            raise ShardFileError(f"shard {self.paths[shard]}: cannot open ({exc}){hint}") from exc
        self._open[shard] = fd
        self.opened += 1
        return fd

    def close(self) -> None:
        while self._open:
            os.close(self._open.popitem()[1])

    def __len__(self) -> int:
        return len(self._open)

    def __getstate__(self) -> dict:  # pickled into a spawned worker: open nothing there yet
        return {**self.__dict__, "_open": OrderedDict()}

    def __del__(self) -> None:
        if getattr(self, "_pid", None) == os.getpid():
            self.close()


class OpenFileLimit(RuntimeError):
    """RLIMIT_NOFILE below what the configured loader needs, with no room to raise it."""


def open_files_now() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux: a generous guess of what a Python process with torch holds
        return 64


def open_file_need(workers: int, prefetch: int, tensors_per_batch: int, open_shards: int, already: int) -> int:
    """File descriptors one rank's processes need at once: those open now, the cached shard
    files, and per loader worker its pipes plus every tensor of the batches in flight (PyTorch
    passes a worker's tensors as file descriptors, held until the batch is consumed)."""
    margin = 16  # what the loader and logging open besides (queues' semaphores, the log file)
    return already + margin + open_shards + workers * (4 + prefetch * tensors_per_batch)


def ensure_open_file_limit(workers: int, prefetch: int, tensors_per_batch: int, open_shards: int) -> int:
    """Raise the soft RLIMIT_NOFILE to what the loader needs where the hard limit allows;
    OpenFileLimit naming the limit and the fix where it does not. Returns the limit in force."""
    need = open_file_need(workers, prefetch, tensors_per_batch, open_shards, open_files_now())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return soft
    if hard == resource.RLIM_INFINITY or hard >= need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        log.info(
            "open-file limit raised from %d to %d (hard limit %s) for %d loader workers", soft, need, hard, workers
        )
        return need
    raise OpenFileLimit(
        f"the open-file limit (RLIMIT_NOFILE, `ulimit -n`) is {soft}, hard limit {hard}: below the {need} files this "
        f"rank needs with train.workers {workers} ({prefetch} batches in flight per worker, {tensors_per_batch} "
        f"tensors each, every one passed as an open file) and train.open_shards {open_shards}. Fix: raise the "
        f"limit to at least {need} where training starts (`ulimit -n {need}` in the job script, LimitNOFILE for a "
        "service, or ask the cluster's administrators), or lower train.workers or train.open_shards"
    )
