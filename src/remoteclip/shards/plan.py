"""A source's chunks: its caption file cut into runs of `samples_per_shard` rows, each named by
its number and a digest of its rows' bytes.

`plan_source` streams the caption file once (memory independent of its length) and writes the
plan: per chunk its number, first row, row count, byte offset in the file (a chunk job seeks
there instead of reading the rows before it) and the sha256 of its lines. The chunk's files are
`<folder>/<number>-<digest>.{tar,idx.npy,json}` in `<root>/sources/<source>/<settings key>/`:
a chunk is reused exactly while its rows and the settings that decide its bytes are those it
was written from; a row that changes gives its chunk a new name, so that chunk alone is built
again, and the plan removes the files of chunks it no longer names.
The digest covers the rows (image path, captions and, for an image inside a container
file, its `stored` position), not the images' bytes: hashing every
image at plan time would read the whole source again at each plan. An image replaced in
place with the same captions keeps its chunk (README: `--forcerun build_shards`).

Rule `plan_shards` (a Snakemake checkpoint: the number of chunks is known only once the
caption file exists) writes `plan.json`; rule `build_shards` builds one chunk
(remoteclip.shards.encode) from the rows `read_chunk_rows` reads back, refusing rows whose bytes
no longer match the plan.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

from .index import INDEX_SUFFIX
from .settings import ShardSettings, settings_key

log = logging.getLogger(__name__)

PLAN = "plan.json"
DIGEST_CHARS = 16
CHUNK_FILE = re.compile(rf"^(\d{{6}})-([0-9a-f]{{{DIGEST_CHARS}}})(\.tar|{re.escape(INDEX_SUFFIX)}|\.json)(\.tmp)?$")
CHUNK_EXTENSIONS = (".tar", INDEX_SUFFIX, ".json")


class SourceChanged(RuntimeError):
    """A caption file whose rows are no longer those its plan was made from."""


def source_folder(root: str | Path, source: str, key: str) -> Path:
    """Where a source's chunks under one settings key live: <root>/sources/<source>/<key>."""
    return Path(root) / "sources" / source / key


def chunk_stem(chunk: dict) -> str:
    return f"{chunk['index']:06d}-{chunk['digest']}"


def plan_source(captions: str | Path, source: str, settings: ShardSettings) -> dict:
    """The chunks of one caption file under `settings` (see the module docstring)."""
    per_chunk = settings.samples_per_shard
    chunks: list[dict] = []
    digest, offset, rows = hashlib.sha256(), 0, 0
    with open(captions, "rb") as fh:
        for line in fh:
            if rows % per_chunk == 0:
                digest = hashlib.sha256()
                chunks.append({"index": len(chunks), "first_row": rows, "rows": 0, "offset": offset})
            digest.update(line)
            chunks[-1]["rows"] += 1
            chunks[-1]["digest"] = digest.hexdigest()[:DIGEST_CHARS]
            offset, rows = offset + len(line), rows + 1
    if not chunks:
        raise ValueError(f"{captions}: no caption rows, so source {source} has nothing to put into shards")
    return {
        "source": source,
        "captions": str(captions),
        "rows": rows,
        "key": settings_key(settings),
        "settings": settings.identity(),
        "chunks": chunks,
    }


def write_plan(plan: dict, folder: str | Path) -> Path:
    """Write plan.json and remove the files of chunks the plan no longer names (rows that
    changed, a partial file left by a killed build)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {chunk_stem(c) for c in plan["chunks"]}
    stale = [p for p in folder.iterdir() if (m := CHUNK_FILE.match(p.name)) and f"{m[1]}-{m[2]}" not in wanted]
    for path in stale:
        path.unlink()
    if stale:
        log.info("removed %d files of chunks of %s that the new plan no longer names", len(stale), plan["source"])
    path = folder / PLAN
    tmp = path.with_name(PLAN + ".tmp")
    tmp.write_text(json.dumps(plan, indent=1) + "\n")
    tmp.replace(path)
    return path


def read_plan(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def chunk_files(plan_path: str | Path) -> list[str]:
    """Every file the plan's chunks are made of (what a run's manifest waits for)."""
    folder = Path(plan_path).parent
    return [str(folder / (chunk_stem(c) + ext)) for c in read_plan(plan_path)["chunks"] for ext in CHUNK_EXTENSIONS]


def find_chunk(plan: dict, index: int, digest: str) -> dict:
    for chunk in plan["chunks"]:
        if chunk["index"] == index and chunk["digest"] == digest:
            return chunk
    raise SourceChanged(f"chunk {index:06d}-{digest} is not in the plan of {plan['source']} ({plan['captions']})")


def read_chunk_rows(captions: str | Path, chunk: dict) -> list[dict]:
    """The chunk's rows, read from its offset; SourceChanged when their bytes differ from the
    plan's, ValueError naming the line for a row that is not JSON."""
    digest, lines = hashlib.sha256(), []
    with open(captions, "rb") as fh:
        fh.seek(chunk["offset"])
        for _ in range(chunk["rows"]):
            line = fh.readline()
            digest.update(line)
            lines.append(line)
    if digest.hexdigest()[:DIGEST_CHARS] != chunk["digest"]:
        raise SourceChanged(
            f"{captions} changed since its chunks were planned (rows {chunk['first_row']}-"
            f"{chunk['first_row'] + chunk['rows'] - 1} of chunk {chunk['index']}): plan again (rule plan_shards)"
        )
    rows = []
    for number, line in enumerate(lines, chunk["first_row"] + 1):
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not {"image", "captions", "source"} <= row.keys():
                raise ValueError("needs image, captions and source")
        except ValueError as exc:
            raise ValueError(f"{captions}:{number}: malformed caption row ({exc})") from None
        rows.append(row)
    return rows
