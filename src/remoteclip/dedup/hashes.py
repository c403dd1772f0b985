"""pHash of every image of a training source or test split, streamed and resumable (rules
`hash_training_source`, `hash_test_split`).

The caption rows (or a split's test regions) are read as a stream, in batches of files: a
batch's images already in the cache (`cache.HashCache`: same key, file size and mtime, same
hash settings) are not decoded again; the others are hashed in the rule's worker processes,
each file decoded once for all its tiles, and appended to the cache as each batch completes.
The hash file is written beside as it goes and renamed into place at the end, one
`key<TAB>phash` row per image in input order (hex; `!reason` for an image that could not be
hashed). Memory is a batch of rows plus the cache's sorted digests (~32 bytes per cached
image, against the ~2.6 KB of a caption row held whole); a job killed at any point and run
again hashes only what the cache lacks and writes the same bytes as a run never interrupted.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import imagehash
import numpy as np
import PIL
from tqdm import tqdm

from ..errors import FormatError
from ..imageio import load_sample_rgb
from ..parallel import imap
from ..schema import defaults
from ..shards import sample_key
from ..stored import container, position
from .cache import HashCache

log = logging.getLogger(__name__)
HASH_SIZE = defaults("dedup")["hash_size"]  # pHash side: 8 gives the paper's 64-bit hash
BATCH = 256  # rows per unit of work: the most a killed job redoes per worker

# key, image path, crop and, for an image inside a container file, where it is (remoteclip.stored;
# a 3-tuple is a file of its own: the test splits' regions)
HashItem = tuple[str, str, tuple[int, int, int, int] | None] | tuple[str, str, tuple | None, dict | None]
# one file of a batch: its path, its `stored` and, per row, (key, crop, identity prefix, cached value or None)
FileJob = tuple[str, dict | None, list[tuple[str, tuple | None, str, str | None]]]


def phash(image, hash_size: int = HASH_SIZE) -> int:
    bits = imagehash.phash(image, hash_size=hash_size).hash.ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


def hash_settings(hash_size: int = HASH_SIZE) -> str:
    """What determines a hash besides the image: cached hashes are reused only under these."""
    return f"phash hash_size={hash_size} imagehash={imagehash.__version__} pillow={PIL.__version__}"


def hex_value(value: int, hash_size: int = HASH_SIZE) -> str:
    return f"{value:0{(hash_size * hash_size + 3) // 4}x}"


def _crop(image, crop):
    return image if crop is None else image.crop((crop[0], crop[1], crop[0] + crop[2], crop[1] + crop[3]))


def _reason(err: FormatError) -> str:
    return " ".join(err.reason.split())  # one line, no tabs: it is a field of a TSV record


# --------------------------------------------------------------------- in memory (tests, benchmarks)
def _item(item: HashItem) -> tuple[str, str, tuple | None, dict | None]:
    key, path, crop, *stored = item
    return key, path, crop, stored[0] if stored else None


def _hash_file(
    job: tuple[str, dict | None, list[tuple[str, tuple | None]], int],
) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """Hash every crop of one file, decoding the file once."""
    path, stored, crops, hash_size = job
    try:
        image = load_sample_rgb(path, stored)
    except FormatError as err:
        return [], [(key, err.reason) for key, _ in crops]
    return [(key, phash(_crop(image, crop), hash_size)) for key, crop in crops], []


def hash_items(
    items: Iterable[HashItem], hash_size: int = HASH_SIZE, workers: int = 1, desc: str = "phash"
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """pHash of every item held in memory, grouped by file so a large scene is decoded once for
    all its tiles; returns ({key: hash}, [(key, why it could not be hashed)]). The rules use
    `hash_source`, which streams and resumes."""
    by_file: dict[str, list] = {}
    stored_of: dict[str, dict | None] = {}
    for key, path, crop, stored in map(_item, items):
        by_file.setdefault(path, []).append((key, crop))
        stored_of[path] = stored
    jobs = [(path, stored_of[path], crops, hash_size) for path, crops in sorted(by_file.items())]
    hashes, failures = {}, []
    with tqdm(total=sum(len(c) for _, _, c, _ in jobs), desc=desc, unit="img") as bar:
        for done, failed in imap(_hash_file, jobs, workers, chunksize=16):
            hashes.update(done)
            failures.extend(failed)
            bar.update(len(done) + len(failed))
    for key, reason in failures:
        log.warning("not hashed: %s: %s", key, reason)
    return hashes, failures


# --------------------------------------------------------------------- streamed and cached (the rules)
def caption_items(path: str | Path) -> Iterator[HashItem]:
    """(key, image, crop, stored) of each row of a caption file, read line by line."""
    with open(path) as fh:
        for number, line in enumerate(fh, 1):
            try:
                row = json.loads(line)
                crop = tuple(row["crop"]) if row.get("crop") else None
                yield sample_key(row), row["image"], crop, row.get("stored")
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise FormatError(path, f"malformed caption row ({type(err).__name__}: {err})", number) from None


def count_lines(path: str | Path) -> int:
    """Rows of a caption file (for the progress bar), counted without parsing them."""
    with open(path, "rb") as fh:
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 24), b""))


def identity_prefix(key: str, path: str, stored: dict | None = None) -> str:
    """`key<TAB>size<TAB>mtime_ns` of an image (`-` for a file that cannot be stat'ed: its
    failure is cached until the file appears). An image inside a container file is known by the
    container's size and mtime plus its position there (`mtime_ns@position`): a tar or Parquet
    file rewritten, or the image moved within it, is hashed again."""
    if any(c in key for c in "\t\n\r"):
        raise ValueError(f"sample key {key!r} holds a tab or line break, which the hash files cannot store")
    try:
        st = os.stat(path if stored is None else container(stored))
    except OSError:
        return f"{key}\t-\t-"
    where = "" if stored is None else f"@{position(stored)}"
    return f"{key}\t{st.st_size}\t{st.st_mtime_ns}{where}"


def _batches(items: Iterable[HashItem], cache: HashCache, batch: int) -> Iterator[list[FileJob]]:
    """`batch` rows at a time, consecutive rows of one file forming one job (decoded once; a
    file with more tiles than a batch is decoded once per batch), each row with its cached
    value looked up."""
    jobs: list[tuple[str, dict | None, list[tuple[str, tuple | None, str]]]] = []
    rows = 0
    for key, path, crop, stored in map(_item, items):
        if rows >= batch:
            yield _with_cached(jobs, cache)
            jobs, rows = [], 0
        if not jobs or jobs[-1][0] != path:
            jobs.append((path, stored, []))
        jobs[-1][2].append((key, crop, identity_prefix(key, path, stored)))
        rows += 1
    if jobs:
        yield _with_cached(jobs, cache)


def _with_cached(jobs, cache: HashCache) -> list[FileJob]:
    cached = iter(cache.lookup([prefix for _, _, entries in jobs for _, _, prefix in entries]))
    return [
        (path, stored, [(key, crop, prefix, next(cached)) for key, crop, prefix in entries])
        for path, stored, entries in jobs
    ]


def _hash_batch(job: tuple[list[FileJob], int]) -> list[tuple[str, str, str, bool]]:
    """(key, identity prefix, value, newly computed) of every row of a batch, in order; a file is
    decoded only when one of its rows is not cached."""
    files, hash_size = job
    out = []
    for path, stored, entries in files:
        image: object = None
        if any(cached is None for *_, cached in entries):
            try:
                image = load_sample_rgb(path, stored)
            except FormatError as err:
                image = err
        for key, crop, prefix, cached in entries:
            if cached is not None:
                out.append((key, prefix, cached, False))
            elif isinstance(image, FormatError):
                out.append((key, prefix, "!" + _reason(image), True))
            else:
                out.append((key, prefix, hex_value(phash(_crop(image, crop), hash_size), hash_size), True))
    return out


def _caught(work: Iterator, errors: list[BaseException]) -> Iterator:
    """`work`, ending early with its exception kept in `errors`: the worker pool reads it in a
    thread of its own and would send an exception to a worker process, where one that cannot be
    pickled again (FormatError) leaves the pool waiting for ever; the caller raises it instead."""
    try:
        yield from work
    except Exception as err:
        errors.append(err)


def hash_source(
    items: Iterable[HashItem],
    out: str | Path,
    cache_path: str | Path,
    hash_size: int = HASH_SIZE,
    workers: int = 1,
    total: int | None = None,
    desc: str = "phash",
    batch: int = BATCH,
) -> dict[str, int]:
    """Hash a stream of (key, path, crop) into the hash file `out`, reusing and extending the
    cache at `cache_path`; returns counts (rows, hashed, cached, failed)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    cache = HashCache(cache_path, hash_settings(hash_size))
    counts = dict.fromkeys(("rows", "hashed", "cached", "failed"), 0)
    complete = False
    try:
        with open(partial, "w", encoding="utf-8") as fh, tqdm(total=total, desc=desc, unit="img") as bar:
            fh.write("key\tphash\n")
            stream_error: list[BaseException] = []
            work = _caught(((files, hash_size) for files in _batches(items, cache, batch)), stream_error)
            for rows in imap(_hash_batch, work, workers):
                for key, prefix, value, new in rows:
                    cache.record(prefix, value, new)
                    fh.write(f"{key}\t{value}\n")
                    counts["hashed" if new else "cached"] += 1
                    if value.startswith("!"):
                        counts["failed"] += 1
                        log.warning("not hashed: %s: %s", key, value[1:])
                cache.flush()
                bar.update(len(rows))
            if stream_error:
                raise stream_error[0]
        os.replace(partial, out)
        complete = True
    finally:
        cache.close(complete)
        partial.unlink(missing_ok=True)
    counts["rows"] = counts["hashed"] + counts["cached"]
    return counts


# --------------------------------------------------------------------- the hash files
def write_hashes(path: str | Path, hashes: dict[str, int], failures: list[tuple[str, str]], hash_bits: int) -> None:
    """A hash file from hashes held in memory (sorted by key; failures last)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width = (hash_bits + 3) // 4
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("key\tphash\n")
        fh.writelines(f"{key}\t{hashes[key]:0{width}x}\n" for key in sorted(hashes))
        fh.writelines(f"{key}\t!{reason}\n" for key, reason in sorted(failures))


def read_hashes(path: str | Path) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    """(keys, their hashes as uint64, [(key, why it was not hashed)]) of a hash file."""
    keys, values, failures = [], [], []
    with open(path, encoding="utf-8") as fh:
        if fh.readline().rstrip("\n") != "key\tphash":
            raise FormatError(path, "not a hash file (its first line is not 'key<TAB>phash')", 1)
        for number, line in enumerate(fh, 2):
            key, tab, value = line.rstrip("\n").rpartition("\t")
            if not tab or not value:
                raise FormatError(path, "malformed hash row (expected key<TAB>hex or key<TAB>!reason)", number)
            if value.startswith("!"):
                failures.append((key, value[1:]))
            else:
                keys.append(key)
                try:
                    values.append(int(value, 16))
                except ValueError:
                    raise FormatError(path, f"malformed hash {value!r}", number) from None
    return keys, np.array(values, dtype=np.uint64), failures
