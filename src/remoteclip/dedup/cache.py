"""The pHash cache: every hash computed, by image identity and hash settings, in an append-only
file that survives a killed job (Snakemake deletes a failed job's outputs; this file is no
output of the rule, so what was hashed before the failure is kept).

Identity: the sample key (source, image path, crop) plus the file's size and modification time
in nanoseconds, as make and rsync judge a file unchanged; an image rewritten in place with the
same size within the same nanosecond would be missed (not verified against a content digest,
which would read every file on every rerun). An image inside a container file (a web corpus's tar or
Parquet file) is known by the container's size and mtime plus its position in it
(`mtime_ns@position`, dedup.hashes.identity_prefix). Settings: the hash and the versions of imagehash
and Pillow that compute it, in the first line; a file with other settings is started afresh.

File: `results/dedup/cache/{dataset}.{train|test}.tsv`, a header line, then one
`key<TAB>size<TAB>mtime_ns<TAB>value` record per hash (value: hex, or `!reason` for an image
that could not be hashed, so a broken file is not retried until it changes). A record is
written whole and flushed; a torn last line (the job was killed mid-write) is cut off when the
file is opened. Lookups go through a sorted array of 128-bit digests of the identity, ~32
bytes per cached image (about 100 while the file is read: 1 M records in 8 s and +104 MB peak
on this project's machine, loaded), not a dict of rows. When a run completes, the file is
rewritten with that run's records only (via `<file>.next`, renamed over it), so it does not
grow with stale images.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

_LOAD_CHUNK = 4096  # records parsed into arrays at once while loading


def identity_digests(prefixes: list[str]) -> np.ndarray:
    """128-bit blake2b digest of each `key<TAB>size<TAB>mtime_ns` (as a sortable S16 array)."""
    joined = b"".join(hashlib.blake2b(p.encode(), digest_size=16).digest() for p in prefixes)
    return np.frombuffer(joined, dtype="S16")


class HashCache:
    """Cached hash values by identity; `lookup` finds them, `record` appends and rewrites."""

    def __init__(self, path: str | Path, settings: str):
        self.path = Path(path)
        self.header = f"# {settings}\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.digests, self.values, self.failures = self._load()
        self._append = open(self.path, "a", encoding="utf-8")
        if self._append.tell() == 0:
            self._append.write(self.header)
            self._append.flush()
        self._next = open(f"{self.path}.next", "w", encoding="utf-8")
        self._next.write(self.header)

    def __len__(self) -> int:
        return len(self.digests)

    def _load(self) -> tuple[np.ndarray, np.ndarray, dict[bytes, str]]:
        """Complete records of a file with these settings (sorted by digest); a file with
        other settings is emptied, a torn last record cut off."""
        digests: list[np.ndarray] = []
        values: list[np.ndarray] = []
        failures: dict[bytes, str] = {}
        if self.path.is_file():
            with open(self.path, "rb+") as fh:
                if fh.readline().decode(errors="replace") != self.header:
                    fh.truncate(0)
                else:
                    good = self._read_records(fh, digests, values, failures)
                    fh.truncate(good)
        if not digests:
            return np.empty(0, "S16"), np.empty(0, "S1"), failures
        d, v = np.concatenate(digests), np.concatenate(values)
        order = np.argsort(d, kind="stable")
        return d[order], v[order], failures

    @staticmethod
    def _read_records(fh, digests: list, values: list, failures: dict) -> int:
        """Parse records into digest/value array chunks; returns where the complete ones end."""
        good = fh.tell()
        prefixes: list[str] = []
        chunk_values: list[bytes] = []

        def flush_chunk() -> None:
            if prefixes:
                d = identity_digests(prefixes)
                digests.append(d)
                # a failure's reason goes to the dict, so the values array stays hash-wide
                values.append(np.array([b"!" if v.startswith(b"!") else v for v in chunk_values], dtype="S"))
                for digest, value in zip(d.tolist(), chunk_values):
                    if value.startswith(b"!"):
                        failures[digest] = value[1:].decode()
                prefixes.clear()
                chunk_values.clear()

        for line in fh:
            if not line.endswith(b"\n") or line.count(b"\t") != 3:
                break  # torn by a kill: this and anything after it is redone
            prefix, _, value = line[:-1].rpartition(b"\t")
            prefixes.append(prefix.decode())
            chunk_values.append(value)
            good += len(line)
            if len(prefixes) >= _LOAD_CHUNK:
                flush_chunk()
        flush_chunk()
        return good

    def lookup(self, prefixes: list[str]) -> list[str | None]:
        """The cached value (hex or `!reason`) of each identity prefix, None when not cached."""
        if not len(self.digests) or not prefixes:
            return [None] * len(prefixes)
        wanted = identity_digests(prefixes)
        at = np.minimum(np.searchsorted(self.digests, wanted), len(self.digests) - 1)
        hit = self.digests[at] == wanted
        out: list[str | None] = []
        for digest, i, found in zip(wanted.tolist(), at.tolist(), hit.tolist()):
            if not found:
                out.append(None)
            elif digest in self.failures:
                out.append("!" + self.failures[digest])
            else:
                out.append(self.values[i].decode())
        return out

    def record(self, prefix: str, value: str, new: bool) -> None:
        """Keep a value of this run: appended to the cache when newly computed, and written to
        the next cache either way."""
        line = f"{prefix}\t{value}\n"
        if new:
            self._append.write(line)
        self._next.write(line)

    def flush(self) -> None:
        """Make the appended records survive a kill of this process (not a power cut: no fsync)."""
        self._append.flush()

    def close(self, complete: bool) -> None:
        """Close the files; a complete run's records replace the cache (stale ones dropped)."""
        self._append.close()
        self._next.close()
        if complete:
            os.replace(f"{self.path}.next", self.path)
        else:
            Path(f"{self.path}.next").unlink(missing_ok=True)
