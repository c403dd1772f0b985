"""A line file written in chunks that survive the process: a stage killed at any point redoes
at most the chunk it was in.

Contract: `ChunkedLines(out, fingerprint)` keeps its chunks in a hidden folder beside `out`
(`.<name>.parts/`: `<n>.lines`, then `<n>.json` with the chunk's counts, written last, each
through a temporary file and a rename, so a chunk is done exactly when its `.json` exists).
The fingerprint says what determines the chunks' bytes (the input file's size and mtime, the
settings, the chunk size); a folder left by a run with another fingerprint is discarded, so a
chunk whose source changed is rebuilt, never reused. `finish` concatenates the chunks in order
into `out` (temporary file, rename) and removes the folder: the result is the bytes an
uninterrupted run writes.

Snakemake removes a failed job's declared outputs, not this folder, which is what lets the
rerun pick up. Used by the `b2c` stage (convert.b2c_dataset).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def fingerprint_of(parts: dict[str, Any]) -> str:
    """A digest of the JSON-serialisable things that determine a chunk's bytes."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def file_identity(path: str | Path) -> dict[str, Any]:
    """What tells a changed input file without reading it: path, size, modification time."""
    stat = Path(path).stat()
    return {"path": str(Path(path).absolute()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class ChunkedLines:
    def __init__(self, out: str | Path, fingerprint: str):
        self.out = Path(out)
        self.folder = self.out.parent / f".{self.out.name}.parts"
        self.fingerprint = fingerprint
        self.reused = 0
        self.written = 0
        self._open()

    def _open(self) -> None:
        stamp = self.folder / "fingerprint"
        if self.folder.is_dir():
            old = stamp.read_text() if stamp.is_file() else None
            if old == self.fingerprint:
                return
            log.info("%s: discarding the chunks of an earlier run on other inputs or settings", self.folder)
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        _write_atomic(stamp, self.fingerprint)

    def _lines(self, index: int) -> Path:
        return self.folder / f"{index:06d}.lines"

    def _counts(self, index: int) -> Path:
        return self.folder / f"{index:06d}.json"

    def done(self, index: int) -> dict[str, Any] | None:
        """The counts of chunk `index` when a run has finished it, else None."""
        path = self._counts(index)
        if not path.is_file():
            return None
        self.reused += 1
        return json.loads(path.read_text())

    def write(self, index: int, lines: Iterable[str], counts: dict[str, Any]) -> None:
        """Chunk `index`: its lines (each ending in a newline), then its counts (the done mark)."""
        _write_atomic(self._lines(index), "".join(lines))
        _write_atomic(self._counts(index), json.dumps(counts))
        self.written += 1

    def finish(self, chunks: int) -> None:
        """Concatenate chunks 0..chunks-1 into the output and remove the folder."""
        missing = [i for i in range(chunks) if not self._counts(i).is_file()]
        if missing:
            raise RuntimeError(f"{self.folder}: chunks {missing[:5]} are not done; cannot finish {self.out}")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_name(self.out.name + ".tmp")
        with open(tmp, "wb") as dst:
            for i in range(chunks):
                with open(self._lines(i), "rb") as src:
                    shutil.copyfileobj(src, dst)
        os.replace(tmp, self.out)
        shutil.rmtree(self.folder)
        log.info("%s: %d chunks reused from an interrupted run, %d written", self.out, self.reused, self.written)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
