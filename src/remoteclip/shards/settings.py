"""What decides a shard's bytes, and the names that follow from it: the shard settings and
their folder name (`settings_key`), an image's identity across stages (`sample_key`) and a
sample's key inside the tars (`member_key`). No image code here: the training reader and the
Snakefile import it without the encoders' dependencies."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
from pathlib import Path

from ..schema import defaults

_DEFAULTS = defaults("shards")  # the schema's shards.* (max_side 448: 2x the 224 px input, see there)


@dataclasses.dataclass
class ShardSettings:
    max_side: int = _DEFAULTS["max_side"]
    samples_per_shard: int = _DEFAULTS["samples_per_shard"]  # caption rows per chunk, one tar each
    jpeg_quality: int = _DEFAULTS["jpeg_quality"]
    seed: int = defaults("")["seed"]
    workers: int = 1  # chunks encoded at once by `build_shards` (the workflow runs one chunk per job)
    # the run's super-resolution step ({model, device}, remoteclip.super_resolution), or None
    super_resolution: dict | None = None

    def identity(self) -> dict:
        """What decides the bytes of a chunk (not how many processes write it); a run without
        super-resolution has no such key, as before the step existed."""
        out = dataclasses.asdict(self)
        del out["workers"]
        if out["super_resolution"] is None:
            del out["super_resolution"]
        return out


def settings_key(settings: ShardSettings) -> str:
    """The folder name of a source's chunks under these settings: readable, and unique through a
    digest of everything that decides their bytes (a super-resolution model by its content)."""
    identity = settings.identity()
    sr = identity.get("super_resolution")
    if sr and sr.get("model") and Path(sr["model"]).is_file():
        identity["super_resolution"] = {
            **sr,
            "sha256": _model_sha256(sr["model"], Path(sr["model"]).stat().st_mtime_ns),
        }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    return f"{settings.max_side}px-q{settings.jpeg_quality}-n{settings.samples_per_shard}-{digest}"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def _model_sha256(path: str, mtime_ns: int) -> str:
    """Read once per DAG build: the Snakefile asks for every run's key."""
    return file_sha256(path)


def sample_key(row: dict) -> str:
    """The image's identity across stages: "source:path" plus "#x_y_w_h" for a tile."""
    crop = row.get("crop")
    return f"{row['source']}:{row['image']}" + ("#{}_{}_{}_{}".format(*crop) if crop else "")


def member_key(source: str, row: int) -> str:
    """A sample's key in the tars: WebDataset splits a member name at its first dot, so the
    source's name keeps letters, digits, '_' and '-' only."""
    return f"{re.sub(r'[^A-Za-z0-9_-]', '_', source)}-{row:09d}"
