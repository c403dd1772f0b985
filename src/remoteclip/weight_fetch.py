"""Rule `fetch_weights`: download one `weight_cache.WeightSource` into the weights cache, verify
its sha256 (against what the source publishes and what the weights lock recorded) and write
its manifest. Runs where the internet is (a login node); see `weight_cache` for the layout.

Reads config/weights.lock.yaml (`download.weights_lock`) and adds the sha256 of every file it
fetches for the first time; writes the files under <cache>/ and <cache>/.fetched/<key>.json.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from .download import ChecksumLock
from .weight_cache import WeightSource, manifest_path, open_clip_cache

log = logging.getLogger(__name__)
_SHA256 = re.compile(r"[0-9a-f]{64}")


class WeightsError(RuntimeError):
    pass


def fetch(source: WeightSource, cache: str | Path, lock_path: str | Path) -> dict[str, Any]:
    """Download `source` into the cache, verify it, write and return its manifest."""
    cache = Path(cache)
    lock = ChecksumLock(Path(lock_path), section="weights")
    files = {"open_clip_tag": _fetch_tag, "hf_hub_model": _fetch_hf_model, "hf_file": _fetch_hf_file}[source.kind](
        source, cache
    )
    records = [_verify(source, Path(path), published, lock) for path, published in files]
    manifest = {"key": source.key, "source": source.describe(), **dataclasses.asdict(source), "files": records}
    out = manifest_path(cache, source)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, out)
    return manifest


def _fetch_tag(source: WeightSource, cache: Path) -> list[tuple[str, str | None]]:
    import open_clip

    from .models import register_model_configs

    register_model_configs()
    cfg = open_clip.get_pretrained_cfg(source.arch, source.tag)
    if not cfg:
        known = open_clip.list_pretrained_tags_by_model(source.arch)
        raise WeightsError(
            f"open_clip has no pretrained tag {source.tag!r} for {source.arch} (known: {', '.join(known) or 'none'})"
        )
    path = open_clip.download_pretrained(cfg, cache_dir=open_clip_cache(cache))
    if not path:
        raise WeightsError(f"{source.describe()}: open_clip gave no file to download")
    return [(path, _published_sha256(cfg, path))]


def _fetch_hf_model(source: WeightSource, cache: Path) -> list[tuple[str, str | None]]:
    from huggingface_hub import hf_hub_download
    from open_clip.pretrained import download_pretrained_from_hf

    assert source.repo is not None  # an hf_hub_model source names its repo
    config = hf_hub_download(source.repo, "open_clip_config.json", cache_dir=open_clip_cache(cache))
    weights = download_pretrained_from_hf(source.repo, cache_dir=open_clip_cache(cache))
    return [(config, _hub_sha256(config)), (weights, _hub_sha256(weights))]


def _fetch_hf_file(source: WeightSource, cache: Path) -> list[tuple[str, str | None]]:
    """One file of a HF repo into <cache>/<repo name>/ (a stable path the config can name). A
    file already there (placed by hand, or fetched before) is verified, not downloaded again."""
    from huggingface_hub import hf_hub_download

    assert source.repo is not None and source.filename is not None  # an hf_file source names both
    target = cache / source.repo.split("/")[-1] / source.filename
    if not target.is_file():
        try:
            hf_hub_download(source.repo, source.filename, revision=source.revision, local_dir=target.parent)
        except Exception as exc:  # no network, gated repo, moved file: the user can place it
            raise WeightsError(
                f"could not download {source.describe()} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}). Download it by hand and put it "
                f"at {target.absolute()}, then run again"
            ) from None
    return [(str(target), _hub_etag(source.repo, source.filename, source.revision))]


def _hub_etag(repo: str, filename: str, revision: str | None) -> str | None:
    """The sha256 the Hub publishes for an LFS file (its etag); None when it cannot be asked."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    try:
        etag = get_hf_file_metadata(hf_hub_url(repo, filename, revision=revision)).etag
    except Exception:  # offline or unreachable: the lock still guards the file
        return None
    return etag if etag and _SHA256.fullmatch(etag) else None


def _published_sha256(cfg: dict, path: str) -> str | None:
    """The sha256 a tag's source publishes: in the Hub's blob name, or in OpenAI's URL."""
    hub = _hub_sha256(path)
    if hub:
        return hub
    match = re.search(r"/([0-9a-f]{64})/", cfg.get("url") or "")
    return match.group(1) if match and Path(path).name == Path(cfg["url"]).name else None


def _hub_sha256(path: str) -> str | None:
    """The Hub cache stores an LFS file as blobs/<sha256> (snapshots/ link to it)."""
    target = Path(os.path.realpath(path))
    return target.name if target.parent.name == "blobs" and _SHA256.fullmatch(target.name) else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(source: WeightSource, path: Path, published: str | None, lock) -> dict[str, Any]:
    name = path.name
    got = sha256_of(path)
    locked = (lock.get(source.key, name) or {}).get("sha256")
    # both must hold: what the source publishes now, and what this project recorded before (a
    # source that changes its file, even with a matching new checksum, is not the same weights)
    for want, origin in ((published, "published by the source"), (locked, f"recorded in {lock.path}")):
        if want and got != want:
            kept = path.with_name(path.name + ".bad")
            os.replace(os.path.realpath(path), kept)
            raise WeightsError(
                f"{source.describe()}: {path} has sha256 {got}, but {want} is expected ({origin}); "
                f"refused, the file is kept at {kept}. If the source changed on purpose, delete "
                f"its entry in {lock.path} and fetch again"
            )
    if not locked:
        lock.record(source.key, name, got, path.stat().st_size, source.describe())
    return {
        "path": str(Path(path).absolute()),
        "sha256": got,
        "size": path.stat().st_size,
        "verified_by": "published sha256" if published else ("lock" if locked else "recorded on first use"),
    }
