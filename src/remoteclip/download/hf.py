"""hf:// transfers through huggingface_hub, which does the Hub's part: resume, retries,
authentication (HF_TOKEN), mirrors (HF_ENDPOINT), offline mode (HF_HUB_OFFLINE) and its
cache (HF_HOME). Ours is only the URL syntax and the error messages.

Contract: `hf_download(url, part, options)` gets the file into the Hugging Face cache and
hard-links (or copies) the cached blob to `part`; returns False (never a resumed file).
Reads the network or the cache; writes the cache and `part`.

    hf://datasets/<owner>/<repo>/<path>[@rev]
    hf://models/<owner>/<repo>/<path>[@rev]     `<repo>@<rev>/<path>` is accepted too
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DownloadError
from .files import Options, dest_of, link_or_copy


@dataclass(frozen=True)
class HfRef:
    repo_type: str  # "dataset" | "model" | "space"
    repo_id: str
    filename: str
    revision: str | None = None


_HF_TYPES = {"datasets": "dataset", "models": "model", "spaces": "space"}


def parse_hf_url(url: str) -> HfRef:
    """`hf://datasets/<owner>/<repo>/<path>[@rev]` or `hf://datasets/<owner>/<repo>@<rev>/<path>`."""
    match = re.fullmatch(r"hf://(datasets|models|spaces)/([^/@]+)/([^/@]+)(?:@([^/]+))?/(.+)", url)
    if not match:
        raise DownloadError(
            f"{url}: malformed hf:// URL; expected hf://datasets/<owner>/<repo>/<path>[@revision] "
            "or hf://models/<owner>/<repo>/<path>[@revision]"
        )
    kind, owner, repo, revision, path = match.groups()
    if revision is None and "@" in path.rsplit("/", 1)[-1]:
        path, revision = path.rsplit("@", 1)
    return HfRef(_HF_TYPES[kind], f"{owner}/{repo}", path, revision or None)


def hf_download(url: str, part: Path, options: Options) -> bool:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    ref, offline = parse_hf_url(url), _hf_offline()
    try:
        cached = hf_hub_download(
            ref.repo_id, ref.filename, repo_type=ref.repo_type, revision=ref.revision, local_files_only=offline
        )
    except LocalEntryNotFoundError as exc:
        raise DownloadError(_hf_not_cached(url, ref, offline, part)) from exc
    except Exception as exc:  # the Hub's errors (not found, gated, HTTP) all get the URL added
        raise DownloadError(f"{url}: Hugging Face Hub download failed ({type(exc).__name__}: {exc})") from exc
    link_or_copy(Path(cached).resolve(), part)
    return False


def _hf_offline() -> bool:
    from huggingface_hub import constants

    # constants are read when huggingface_hub is imported; the variable may be set later.
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return bool(constants.HF_HUB_OFFLINE) or env in {"1", "ON", "YES", "TRUE"}


def _hf_not_cached(url: str, ref: HfRef, offline: bool, part: Path) -> str:
    from huggingface_hub import constants

    where = f"{ref.filename} from {ref.repo_type} {ref.repo_id}" + (f"@{ref.revision}" if ref.revision else "")
    if offline:
        return (
            f"{url}: HF_HUB_OFFLINE is set and {where} is not in the Hugging Face cache "
            f"({constants.HF_HUB_CACHE}); unset HF_HUB_OFFLINE to download it, or put the "
            f"file at {dest_of(part)}"
        )
    return (
        f"{url}: the Hugging Face Hub ({constants.ENDPOINT}) could not be reached and {where} "
        "is not cached; check the network, HF_ENDPOINT and proxy settings"
    )
