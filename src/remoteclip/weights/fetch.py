"""Rule `fetch_weights`: download one `cache.WeightSource` into the weights cache, verify
its sha256 (against what the source publishes and what the weights lock recorded) and write
its manifest. Runs where the internet is (a login node); `cache` knows where everything lies.

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

from ..download import ChecksumLock
from ..image_encoders import image_encoder
from ..models.configs import register_model_configs
from .cache import (
    WeightSource,
    hf_text_repos,
    image_encoder_path,
    manifest_path,
    member_path,
    open_clip_cache,
    repo_dir,
    url_file,
)
from .files import extract_member

log = logging.getLogger(__name__)
_SHA256 = re.compile(r"[0-9a-f]{64}")


class WeightsError(RuntimeError):
    pass


def fetch(source: WeightSource, cache: str | Path, lock_path: str | Path) -> dict[str, Any]:
    """Download `source` into the cache, verify it, write and return its manifest."""
    cache = Path(cache)
    lock = ChecksumLock(Path(lock_path), section="weights")
    fetchers = {
        "open_clip_tag": _fetch_tag,
        "hf_hub_model": _fetch_hf_model,
        "hf_file": _fetch_hf_file,
        "url": _fetch_url,
        "hf_repo": _fetch_hf_repo,
        "image_init": _fetch_image_init,
    }
    files = fetchers[source.kind](source, cache)
    records = [_verify(source, Path(path), published, lock) for path, published in files]
    # the transformers text tower an open_clip release names, under that repo's own lock key
    # (its config.json is not the release's)
    for tower, path, published in _text_towers(source, cache):
        records.append(_verify(tower, Path(path), published, lock))
    if source.member:  # a verified archive: its checkpoint is what the loader reads
        (archive,) = files
        member = extract_member(Path(archive[0]), source.member, member_path(archive[0], source.member))
        records.append({**records[0], **_record_of(member), "verified_by": f"member of {Path(archive[0]).name}"})
    manifest = {"key": source.key, "source": source.describe(), **dataclasses.asdict(source), "files": records}
    out = manifest_path(cache, source)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, out)
    return manifest


def _fetch_tag(source: WeightSource, cache: Path) -> list[tuple[str, str | None]]:
    import open_clip

    register_model_configs()  # a custom architecture's tags (config/models/pretrained_tags.yaml)
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

    config = hf_hub_download(str(source.repo), "open_clip_config.json", cache_dir=open_clip_cache(cache))
    weights = download_pretrained_from_hf(source.repo, cache_dir=open_clip_cache(cache))
    return [(config, _hub_sha256(config)), (weights, _hub_sha256(weights))]


def _fetch_hf_file(source: WeightSource, cache: Path) -> list[tuple[str, str | None]]:
    """One file of a HF repo into <cache>/<repo name>/ (a stable path the config can name). A
    file already there (placed by hand, or fetched before) is verified, not downloaded again."""
    repo, filename = str(source.repo), str(source.filename)
    target = cache / repo.split("/")[-1] / filename
    return [_hf_file_to(repo, filename, source.revision, target, source.describe())]


def _hf_file_to(repo: str, filename: str, revision: str | None, target: Path, what: str) -> tuple[str, str | None]:
    """One file of a HF repo at `target` (its folder is `local_dir`, so `filename` must be the
    target's name), with the sha256 the Hub publishes; a file already there is not fetched again."""
    from huggingface_hub import hf_hub_download

    if not target.is_file():
        try:
            hf_hub_download(repo, filename, revision=revision, local_dir=target.parent)
        except Exception as exc:  # no network, gated repo, moved file: the user can place it
            raise WeightsError(
                f"could not download {what} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}). Download it by hand and put it "
                f"at {target.absolute()}, then run again"
            ) from None
    return (str(target), _hub_etag(repo, filename, revision))


def _fetch_url(source: WeightSource, cache: Path) -> list[tuple[str, str | None]]:
    """A file at a URL into <cache>/url/ (where cache.weights_file looks); a file
    already there is verified, not downloaded again."""
    url = str(source.url)
    target = url_file(cache, url)
    _url_to(url, target, url)
    return [(str(target), None)]  # a URL publishes no digest: the zoo's sha256 or the lock guard it


def _url_to(url: str, target: Path, what: str) -> None:
    """The file at `url` at `target` (through <target>.part, so a broken download leaves no
    file that looks whole); a file already there is not fetched again."""
    import urllib.request

    if target.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise WeightsError(
            f"could not download {what} ({type(exc).__name__}: {exc}). Download it by hand and put it "
            f"at {target.absolute()}, then run again"
        ) from None
    os.replace(part, target)


def _fetch_image_init(source: WeightSource, cache: Path) -> list[tuple[str, str | None]]:
    """A Table V image-encoder checkpoint into <cache>/image_inits/<name>/ (cache.image_encoder_path,
    where the train job looks): a timm file from the Hub (whose sha256 the Hub publishes) or the
    authors' URL (recorded in the lock on first use). A file already there (placed by hand) is
    verified, not downloaded again."""
    entry = image_encoder(str(source.tag))
    if entry.unavailable:
        raise WeightsError(f"image_init {entry.name}: {entry.unavailable}")
    target = image_encoder_path(cache, entry)
    if entry.hf_repo:
        return [_hf_file_to(entry.hf_repo, entry.hf_filename, None, target, source.describe())]
    _url_to(str(entry.url), target, source.describe())
    return [(str(target), None)]


# what a whole-repo release needs: (files of which at least one must exist, ...) per layout;
# every tokenizer file that exists comes too (the Hub has no listing we rely on: a fixed set
# of names keeps the fetch reproducible and works against any server that serves files)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "preprocessor_config.json",
)
REPO_FILES = {
    "open_clip": (("open_clip_config.json",), ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")),
    "transformers": (("config.json",), ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")),
    "tokenizer": (("tokenizer.json", "tokenizer_config.json", "vocab.json", "spiece.model"),),
}


def _fetch_hf_repo(source: WeightSource, cache: Path) -> list[tuple[str, str | None]]:
    """The config, weights and tokenizer files of a HF repo at a revision, into
    <cache>/hf/<owner>--<name>@<revision>/ (cache.repo_dir)."""
    target = repo_dir(cache, str(source.repo), source.revision or "main")
    got: dict[str, str] = {}
    for group in REPO_FILES[str(source.layout)]:
        found = [name for name in group if _download(source, name, target)]
        if not found:
            raise WeightsError(f"{source.describe()}: none of {', '.join(group)} found in the repo")
        got |= {name: name for name in found}
    for name in TOKENIZER_FILES + ("config.json", "open_clip_config.json"):
        if name not in got and _download(source, name, target):
            got[name] = name
    index = target / "model.safetensors.index.json"
    if index.is_file():  # sharded weights: the shards the index names
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            if not _download(source, shard, target):
                raise WeightsError(f"{source.describe()}: shard {shard} named by {index.name} not found")
            got[shard] = shard
    return [(str(target / name), _hub_etag(str(source.repo), name, source.revision)) for name in sorted(got)]


def _text_towers(source: WeightSource, cache: Path) -> list[tuple[WeightSource, str, str | None]]:
    """The config and tokenizer files of the transformers text tower an open_clip release's
    config names (RS-M-CLIP: xlm-roberta-base), into <cache>/hf/<repo>@main/: open_clip builds
    the tower from its config.json (the weights come with the release) and the tokenizer from
    its files, which it would otherwise ask the Hub for on the compute node. Its main branch,
    as open_clip reads it; the lock records the digests on first use."""
    if source.kind != "hf_repo" or source.layout != "open_clip":
        return []
    config = repo_dir(cache, str(source.repo), source.revision or "main") / "open_clip_config.json"
    out: list[tuple[WeightSource, str, str | None]] = []
    for repo in hf_text_repos(config):
        tower = WeightSource("hf_repo", repo=repo, revision="main", layout="tokenizer")
        target = repo_dir(cache, repo, "main")
        if not _download(tower, "config.json", target):
            raise WeightsError(f"{source.describe()}: its text tower {repo} has no config.json")
        names = ["config.json"] + [name for name in TOKENIZER_FILES if _download(tower, name, target)]
        out += [(tower, str(target / name), _hub_etag(repo, name, "main")) for name in names]
    return out


def _download(source: WeightSource, name: str, target: Path) -> bool:
    """One file of the repo into `target` (True), or False when the repo has no such file."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    if (target / name).is_file():
        return True
    try:
        hf_hub_download(str(source.repo), name, revision=source.revision, local_dir=target)
    except EntryNotFoundError:
        return False
    except Exception as exc:  # no network, gated repo: the user can place the files
        raise WeightsError(
            f"could not download {name} of {source.describe()} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Download the repo by hand into "
            f"{target.absolute()}, then run again"
        ) from None
    return True


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


def _record_of(path: Path) -> dict[str, Any]:
    return {"path": str(path.absolute()), "sha256": sha256_of(path), "size": path.stat().st_size}


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
    stated = ((source.sha256, "stated in the model zoo"),) if source.sha256 and source.sha256 != published else ()
    for want, origin in ((published, "published by the source"), *stated, (locked, f"recorded in {lock.path}")):
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
        "verified_by": (
            "published sha256"
            if published
            else "zoo sha256"
            if source.sha256
            else ("lock" if locked else "recorded on first use")
        ),
    }
