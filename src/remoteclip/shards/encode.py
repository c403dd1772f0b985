"""One chunk of a source's caption rows -> one WebDataset tar, its member index and its record.

Each sample: `key.jpg` (re-encoded, longest side at most `max_side`), `key.txt` (one caption,
so open_clip_train can read the shards) and `key.json` (all captions, source, object counts,
original size; before any super-resolution). A run may upscale every image with a
super-resolution model first (remoteclip.super_resolution). The key is the source's name and
the row's number in its caption file (`member_key`), unique within any run. Same rows and
settings give byte-identical tars: members sorted by name (the rows' order), mtime 0,
uid/gid 0, no user names; the stored caption is a seeded pick.

A chunk's images are decoded once per file (a 6000 px Potsdam scene holds ~150 tiles; an image
inside a web corpus's tar or Parquet file, the row's `stored`, is read from there), encoded
in memory (bounded by the chunk's size) and written as `<stem>.tar`, then `<stem>.idx.npy`
(remoteclip.shards.index) and last `<stem>.json` (the record: samples and their images, the
unreadable images and why, size and sha256 of the tar), each through a temporary file and a
rename. The record is written last, so a chunk whose record exists is complete (`is_complete`)
and a build killed at any point leaves at most this one chunk to redo.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import tarfile
from collections import defaultdict
from pathlib import Path

from PIL import Image

from ..formats.base import FormatError
from ..imageio import load_sample_rgb
from ..super_resolution import check as check_super_resolution
from ..super_resolution import upscale
from .index import index_path, scan_tar, write_index
from .settings import ShardSettings, file_sha256, member_key, sample_key

log = logging.getLogger(__name__)


def _resized(image: Image.Image, max_side: int) -> Image.Image:
    scale = max_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


def _encode_file(
    path: str, in_container: dict | None, entries: list, settings: ShardSettings
) -> list[tuple[int, bytes | None, tuple | str]]:
    """Decode one source image once (a file, or `stored` in a container file); (position, JPEG,
    original size) per crop, or (position, None, why) for every crop when it does not decode
    (`in_container`: the row's `stored`)."""
    try:
        image = load_sample_rgb(path, in_container)
    except FormatError as err:
        return [(position, None, err.reason) for position, _ in entries]
    out: list[tuple[int, bytes | None, tuple | str]] = []
    for position, crop in entries:
        region = image if crop is None else image.crop((crop[0], crop[1], crop[0] + crop[2], crop[1] + crop[3]))
        stored = upscale(region, settings.super_resolution) if settings.super_resolution is not None else region
        buf = io.BytesIO()
        _resized(stored, settings.max_side).save(buf, "JPEG", quality=settings.jpeg_quality)
        out.append((position, buf.getvalue(), region.size))
    return out


def _payload(row: dict, key: str, seed: int, original_size: tuple) -> dict:
    return {
        "caption": random.Random(f"{seed}:{key}").choice(row["captions"]),
        "captions": row["captions"],
        "source": row["source"],
        "image": row["image"],
        "crop": row.get("crop"),
        "objects": row.get("objects", {}),
        "original_size": list(original_size),
        "split": row.get("split"),
    }


def _tar_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info, io.BytesIO(data)


def record_path(stem: Path) -> Path:
    return stem.with_name(stem.name + ".json")


def tar_path(stem: Path) -> Path:
    return stem.with_name(stem.name + ".tar")


def is_complete(stem: Path) -> bool:
    """Whether a chunk was written whole: its record exists (written last) and its tar has the
    size the record says."""
    record, tar = record_path(stem), tar_path(stem)
    if not (record.is_file() and tar.is_file() and index_path(tar).is_file()):
        return False
    return json.loads(record.read_text())["bytes"] == tar.stat().st_size


def write_chunk(rows: list[dict], first_row: int, stem: str | Path, settings: ShardSettings, source: str) -> dict:
    """Encode the rows (numbered from `first_row` in their caption file) into `<stem>.tar`, its
    index and its record; returns the record."""
    stem = Path(stem)
    check_super_resolution(settings.super_resolution)
    by_file: dict[str, list] = defaultdict(list)
    for position, row in enumerate(rows):
        by_file[row["image"]].append((position, row.get("crop")))
    members, samples, skipped = [], [], {}
    for path, entries in by_file.items():
        stored = rows[entries[0][0]].get("stored")
        for position, jpeg, size in _encode_file(path, stored, entries, settings):
            row = rows[position]
            if jpeg is None:
                skipped[sample_key(row)] = size
                log.warning("skipped %s: %s", sample_key(row), size)
                continue
            key = member_key(source, first_row + position)
            payload = _payload(row, key, settings.seed, size)  # type: ignore[arg-type]
            members += [
                (f"{key}.jpg", jpeg),
                (f"{key}.json", json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()),
                (f"{key}.txt", payload["caption"].encode()),
            ]
            samples.append((key, sample_key(row)))
    tar = tar_path(stem)
    tmp = tar.with_name(tar.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as out:
        for name, data in sorted(members):
            out.addfile(*_tar_member(name, data))
    os.replace(tmp, tar)
    write_index(scan_tar(tar), index_path(tar))
    record = {
        "source": source,
        "first_row": first_row,
        "rows": len(rows),
        "samples": sorted(samples),
        "skipped": dict(sorted(skipped.items())),
        "bytes": tar.stat().st_size,
        "sha256": file_sha256(str(tar)),
        "settings": settings.identity(),
    }
    tmp = record_path(stem).with_name(record_path(stem).name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, record_path(stem))
    return record
