"""A run's training set: the chunks of its sources, minus what de-duplication removed for it.

`write_run_manifest` writes into results/shards/{run}/:

- `shard-%06d.tar` and `shard-%06d.idx.npy`: relative links to the chunks of the run's sources
  (results/shards/sources/...), numbered in the order of the run's sources and their chunks, so
  `open_clip_train --train-data 'results/shards/RUN/shard-{000000..N}.tar' --dataset-type
  webdataset` reads the run with one URL and the `sizes.json` beside it (it looks up each
  shard's base name in the sizes.json of the first shard's folder);
- `sizes.json`: {shard: samples in the tar}, as open_clip_train counts them;
- `manifest.json`: per shard its link, the chunk it points to, source, samples, size, sha256
  and `excluded`: the keys of its samples that the run's de-duplication removed
  (results/dedup/{run}/removed.tsv). The run trains on every other sample, mixed at load time by
  the seeded sampler (remoteclip.train.data). Plus per-source counts, the number removed, the
  unreadable images with their reasons, the shard settings, and `sources`: every source with
  its kept samples, licence and terms, and `licence_note` ("non-commercial sources: ...", or
  null; remoteclip.licences).

open_clip_train has no exclusion list: through these links it reads the removed samples too
(see remoteclip.shards). Rule `shard_manifest`; read back by `read_run_shards`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from .. import licences as licence_terms
from .index import INDEX_SUFFIX
from .plan import chunk_stem, read_plan

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SIZES = "sizes.json"


def _link(target: Path, link: Path) -> None:
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(target, link.parent))


def _clear(out_dir: Path) -> None:
    """Remove a previous manifest and its links (never the chunks they point to)."""
    for path in out_dir.glob("shard-*"):
        path.unlink()
    for name in (MANIFEST, SIZES):
        (out_dir / name).unlink(missing_ok=True)


def write_run_manifest(
    run: str,
    plans: Sequence[str | Path],
    removed: set[str],
    out_dir: str | Path,
    settings: dict,
    licences: Mapping[str, Mapping] | None = None,
) -> dict:
    """Link the chunks of the run's sources (their plans, in the run's order) into `out_dir`,
    leave out the samples in `removed` (image identities, remoteclip.shards.encode.sample_key),
    and write manifest.json and sizes.json. `licences`: {source: {"licence", "terms"}}
    (remoteclip.licences.source_licences); a source without one is listed as not stated."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear(out_dir)
    shards: list[dict] = []
    per_source: Counter[str] = Counter()
    skipped: dict[str, str] = {}
    found = 0
    for plan_path in plans:
        plan = read_plan(plan_path)
        for chunk in plan["chunks"]:
            stem = Path(plan_path).parent / chunk_stem(chunk)
            record = json.loads(stem.with_name(stem.name + ".json").read_text())
            name = f"shard-{len(shards):06d}"
            _link(stem.with_name(stem.name + ".tar"), out_dir / f"{name}.tar")
            _link(stem.with_name(stem.name + INDEX_SUFFIX), out_dir / f"{name}{INDEX_SUFFIX}")
            excluded = [key for key, image in record["samples"] if image in removed]
            found += len(excluded)
            per_source[plan["source"]] += len(record["samples"]) - len(excluded)
            skipped.update(record["skipped"])
            shards.append(
                {
                    "name": f"{name}.tar",
                    "chunk": os.path.relpath(stem.with_name(stem.name + ".tar"), out_dir),
                    "source": plan["source"],
                    "samples": len(record["samples"]),
                    "excluded": excluded,
                    "bytes": record["bytes"],
                    "sha256": record["sha256"],
                }
            )
    total = sum(per_source.values())
    if not total:
        raise ValueError(f"run {run}: no samples to train on in {len(shards)} shards of {len(plans)} sources")
    if found != len(removed):
        log.info(
            "%d of the %d removed images are in no shard (unreadable, or not a source of %s)",
            len(removed) - found,
            len(removed),
            run,
        )
    manifest = {
        "run": run,
        "total": total,
        "shards": shards,
        "per_source": dict(sorted(per_source.items())),
        "removed_by_dedup": found,
        "skipped": {
            "total": len(skipped),
            "by_reason": dict(Counter(skipped.values())),
            "images": dict(sorted(skipped.items())),
        },
        "settings": settings,
        **_licences(list(dict.fromkeys(s["source"] for s in shards)), per_source, licences or {}),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    (out_dir / SIZES).write_text(json.dumps({s["name"]: s["samples"] for s in shards}, indent=1) + "\n")
    return manifest


def _licences(sources: list[str], kept: Counter[str], licences: Mapping[str, Mapping]) -> dict:
    """The manifest's `sources` (in the run's order, with kept samples, licence and terms) and
    `licence_note`."""
    listed = {
        name: {"licence": licence_terms.NOT_CATALOGUED, "terms": licence_terms.default_terms()}
        | dict(licences.get(name) or {})
        for name in sources
    }
    return {
        "sources": {name: {"samples": kept[name], **lic} for name, lic in listed.items()},
        "licence_note": licence_terms.note(listed),
    }


@dataclasses.dataclass
class RunShards:
    """What a training run reads: shard paths and, from a manifest, each one's size in bytes
    and the keys it leaves out; `digests` name the content (the checkpoint fingerprint's)."""

    paths: list[str]
    sizes: list[int | None]
    excluded: list[frozenset[str]]
    digests: list[str]
    sources: list[str | None]  # each shard's source (None: a folder without a manifest)
    manifest: dict | None = None  # the manifest itself (its sources' licences and terms)


def read_run_shards(shards_dir: str | Path) -> RunShards:
    """The run's shards from its manifest.json, or every *.tar of a folder written elsewhere."""
    shards_dir = Path(shards_dir)
    manifest = shards_dir / MANIFEST
    if not manifest.is_file():
        paths = sorted(str(p) for p in shards_dir.glob("*.tar"))
        digests = [Path(p).name + str(Path(p).stat().st_size) for p in paths]
        return RunShards(paths, [None] * len(paths), [frozenset()] * len(paths), digests, [None] * len(paths))
    doc = json.loads(manifest.read_text())
    shards = doc["shards"]
    excluded = [frozenset(s.get("excluded", ())) for s in shards]
    return RunShards(
        [str(shards_dir / s["name"]) for s in shards],
        [s["bytes"] for s in shards],
        excluded,
        [s["sha256"] + (f"-{_digest(sorted(e))}" if e else "") for s, e in zip(shards, excluded)],
        [s["source"] for s in shards],
        doc,
    )


def _digest(keys: list[str]) -> str:
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
