"""Shards in one process: plan each source, build the chunks not yet complete, write the run's
manifest. The workflow runs the same steps as separate jobs (rules `plan_shards`,
`build_shards` once per chunk, `shard_manifest`); this is the same code for tests, benchmarks
and a user without Snakemake.

Rerunning after a failure or a kill builds only the chunks that are not complete (img2dataset's
incremental mode): with one worker, the chunk that was being written when the process died.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from tqdm import tqdm

from ..parallel import imap
from ..super_resolution import check as check_super_resolution
from .encode import ShardSettings, is_complete, write_chunk
from .manifest import write_run_manifest
from .plan import PLAN, chunk_stem, find_chunk, plan_source, read_chunk_rows, source_folder, write_plan


def _build_chunk(job) -> int:
    captions, chunk, stem, settings, source = job
    write_chunk(read_chunk_rows(captions, chunk), chunk["first_row"], stem, settings, source)
    return chunk["rows"]


def build_chunk(
    captions: str | Path, plan: dict, index: int, digest: str, stem: str | Path, settings: ShardSettings
) -> dict:
    """One chunk of a plan (rule `build_shards`); returns its record."""
    chunk = find_chunk(plan, index, digest)
    return write_chunk(read_chunk_rows(captions, chunk), chunk["first_row"], stem, settings, plan["source"])


def build_source(captions: str | Path, source: str, root: str | Path, settings: ShardSettings) -> Path:
    """Plan one caption file and build its incomplete chunks under `root`; returns the plan's path."""
    plan = plan_source(captions, source, settings)
    folder = source_folder(root, source, plan["key"])
    write_plan(plan, folder)
    todo = [c for c in plan["chunks"] if not is_complete(folder / chunk_stem(c))]
    jobs = [(str(captions), c, folder / chunk_stem(c), settings, source) for c in todo]
    with tqdm(total=sum(c["rows"] for c in todo), desc=f"shards {source}", unit="img") as bar:
        for rows in imap(_build_chunk, jobs, settings.workers):
            bar.update(rows)
    return folder / PLAN


def write_caption_files(rows: Iterable[dict], folder: str | Path) -> dict[str, Path]:
    """Rows as caption files, one per source in order of first appearance: {source: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[str]] = {}
    for row in rows:
        lines.setdefault(row["source"], []).append(json.dumps(row, ensure_ascii=False) + "\n")
    paths = {}
    for source, text in lines.items():
        paths[source] = folder / f"{source}.jsonl"
        paths[source].write_text("".join(text))
    return paths


def build_shards(
    rows: list[dict],
    out_dir: str | Path,
    settings: ShardSettings,
    run: str = "",
    removed: Iterable[str] = (),
    licences: Mapping[str, Mapping] | None = None,
) -> dict:
    """Shards of caption rows in one call: the rows go to <out_dir>/captions/<source>.jsonl,
    their chunks to <out_dir>/sources/, the run's links, manifest.json and sizes.json to
    `out_dir`, leaving out the images named in `removed`; `licences`: the sources' licences and
    terms for the manifest (write_run_manifest). Returns the manifest."""
    check_super_resolution(settings.super_resolution, run)  # before anything is written
    out_dir = Path(out_dir)
    captions = write_caption_files(rows, out_dir / "captions")
    plans = [build_source(path, source, out_dir, settings) for source, path in captions.items()]
    return write_run_manifest(run, plans, set(removed), out_dir, settings.identity(), licences)
