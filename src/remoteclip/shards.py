"""WebDataset shards of a run's de-duplicated training set.

Each sample: `key.jpg` (re-encoded, longest side at most `max_side`), `key.txt` (one
caption, so open_clip_train can read the shards) and `key.json` (all captions, source,
object counts, original size; before any super-resolution). A run may upscale every image
with a super-resolution model first (remoteclip.super_resolution). Samples are shuffled across sources with a seed and cut
into shards of `samples_per_shard`. Same inputs and seed give byte-identical tars:
members sorted, mtime 0, uid/gid 0, no user names.

Two phases: a process pool decodes every source file once (a 6000 px Potsdam scene
holds ~150 tiles) and stages the encoded JPEGs on disk; a second pool packs the tars.

Rule `build_shards` (scripts/build_shards.py). Reads results/captions/{source}.jsonl of the
run's sources, minus the images listed in results/dedup/{run}/removed.tsv. Writes
results/shards/{run}/shard-%06d.tar, manifest.json (per-source counts, sha256 and size per
shard, the removed and unreadable images, the settings) and sizes.json ({shard: samples}, as
open_clip_train reads it). The `train` rule reads the folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import random
import shutil
import tarfile
from collections import Counter, defaultdict
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from .formats.base import FormatError
from .imageio import load_rgb
from .parallel import imap
from .schema import defaults
from .super_resolution import check as check_super_resolution
from .super_resolution import upscale

log = logging.getLogger(__name__)
_DEFAULTS = defaults("shards")  # the schema's shards.* (max_side 448: 2x the 224 px input, see there)


@dataclasses.dataclass
class ShardSettings:
    max_side: int = _DEFAULTS["max_side"]
    samples_per_shard: int = _DEFAULTS["samples_per_shard"]
    jpeg_quality: int = _DEFAULTS["jpeg_quality"]
    seed: int = defaults("")["seed"]
    workers: int = 1
    # the run's super-resolution step ({model, device}, remoteclip.super_resolution), or None
    super_resolution: dict | None = None


def sample_key(row: dict) -> str:
    """The image's identity across stages: "source:path" plus "#x_y_w_h" for a tile."""
    crop = row.get("crop")
    return f"{row['source']}:{row['image']}" + ("#{}_{}_{}_{}".format(*crop) if crop else "")


def read_caption_rows(paths: list[str | Path], removed: set[str]) -> tuple[list[dict], int]:
    """Caption rows of the run's sources in order, minus removed keys; (rows, removed count)."""
    rows, dropped = [], 0
    for path in paths:
        with open(path) as fh:
            for line in fh:
                row = json.loads(line)
                if sample_key(row) in removed:
                    dropped += 1
                else:
                    rows.append(row)
    return rows, dropped


def _resized(image: Image.Image, max_side: int) -> Image.Image:
    scale = max_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


def _encode_file(job) -> list[tuple[int, tuple[int, int] | None, str | None]]:
    """Decode one source file, stage one JPEG per (index, crop); (index, original size, error)."""
    path, entries, staging, max_side, quality, sr = job
    try:
        image = load_rgb(path)
    except FormatError as err:
        return [(index, None, err.reason) for index, _ in entries]
    out: list[tuple[int, tuple[int, int] | None, str | None]] = []
    for index, crop in entries:
        region = image if crop is None else image.crop((crop[0], crop[1], crop[0] + crop[2], crop[1] + crop[3]))
        stored = upscale(region, sr) if sr is not None else region
        buf = io.BytesIO()
        _resized(stored, max_side).save(buf, "JPEG", quality=quality)
        (Path(staging) / f"{index:09d}.jpg").write_bytes(buf.getvalue())
        out.append((index, region.size, None))
    return out


def _tar_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info, io.BytesIO(data)


def _write_shard(job) -> dict:
    path, samples, staging = job
    members = []
    for key, index, payload in samples:
        members.append((f"{key}.jpg", (Path(staging) / f"{index:09d}.jpg").read_bytes()))
        members.append((f"{key}.json", json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()))
        members.append((f"{key}.txt", payload["caption"].encode()))
    tmp = Path(str(path) + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in sorted(members):
            tar.addfile(*_tar_member(name, data))
    tmp.replace(path)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return {"name": Path(path).name, "samples": len(samples), "bytes": Path(path).stat().st_size, "sha256": digest}


def build_shards(
    rows: list[dict], out_dir: str | Path, settings: ShardSettings, run: str = "", removed: int = 0
) -> dict:
    """Write the shards, manifest.json and sizes.json of one run into `out_dir`."""
    out_dir = Path(out_dir)
    check_super_resolution(settings.super_resolution, run)  # before anything is removed or written
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging = out_dir / ".staging"
    staging.mkdir(parents=True)

    by_file: dict[str, list] = defaultdict(list)
    for index, row in enumerate(rows):
        by_file[row["image"]].append((index, row.get("crop")))
    jobs = [
        (path, entries, str(staging), settings.max_side, settings.jpeg_quality, settings.super_resolution)
        for path, entries in sorted(by_file.items())
    ]
    sizes, failures = {}, {}
    with tqdm(total=len(rows), desc=f"encode {run}", unit="img") as bar:
        for results in imap(_encode_file, jobs, settings.workers, chunksize=4):
            for index, size, error in results:
                if error is None:
                    sizes[index] = size
                else:
                    failures[index] = error
                    log.warning("skipped %s: %s", sample_key(rows[index]), error)
            bar.update(len(results))

    good = sorted(sizes)
    random.Random(settings.seed).shuffle(good)
    samples = []
    for position, index in enumerate(good):
        row, key = rows[index], f"{position:09d}"
        caption = random.Random(f"{settings.seed}:{key}").choice(row["captions"])
        payload = {
            "caption": caption,
            "captions": row["captions"],
            "source": row["source"],
            "image": row["image"],
            "crop": row.get("crop"),
            "objects": row.get("objects", {}),
            "original_size": list(sizes[index]),
            "split": row.get("split"),
        }
        samples.append((key, index, payload))
    n = settings.samples_per_shard
    shard_jobs = [
        (out_dir / f"shard-{k:06d}.tar", samples[s : s + n], str(staging))
        for k, s in enumerate(range(0, len(samples), n))
    ]
    shards = list(tqdm(imap(_write_shard, shard_jobs, settings.workers), total=len(shard_jobs), desc=f"shards {run}"))
    shutil.rmtree(staging)

    manifest = {
        "run": run,
        "total": len(samples),
        "shards": shards,
        "per_source": dict(sorted(Counter(p["source"] for _, _, p in samples).items())),
        "removed_by_dedup": removed,
        "skipped": {
            "total": len(failures),
            "by_reason": dict(Counter(failures.values())),
            "images": {sample_key(rows[i]): why for i, why in sorted(failures.items())},
        },
        # a run without super-resolution keeps the manifest it had before the step existed
        "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k != "super_resolution" or v is not None}
        | {"workers": None},
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (out_dir / "sizes.json").write_text(json.dumps({s["name"]: s["samples"] for s in shards}, indent=1) + "\n")
    return manifest
