"""One URL into one file: transfer to `<dest>.part`, verify, rename.

Contract: `fetch_file(url, dest, md5=, sha256=)` reads the URL (http(s)://, hf://,
gdrive://) and writes `dest` only once every given digest matches; on the way it writes
`dest.part`, and wrong bytes end up in `dest.bad` (`ChecksumError` says so). An existing
`dest` that verifies is returned without a transfer. `transfer` is the scheme dispatch
without verification, for the cluster's two-step fetch (dataset.py).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

from .checksums import Expected, checksum_error, expected_digests, file_digests
from .errors import DownloadError
from .files import Options, keep_aside, part_path
from .gdrive import gdrive_download
from .hf import hf_download
from .http import http_download

log = logging.getLogger(__name__)

_TRANSPORTS = {"http": http_download, "https": http_download, "hf": hf_download, "gdrive": gdrive_download}


def fetch_file(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download `url` to `dest` via `dest.part`; rename only once the checksums pass.

    `retries` counts consecutive failed attempts that made no progress (a transfer that
    breaks after receiving bytes resumes without using one up); the wait before retry n
    is `backoff * 2**(n-1)` seconds, capped at 60. `timeout` is per connect/read."""
    dest = Path(dest)
    options = Options(retries=retries, backoff=backoff, timeout=timeout, progress=progress)
    expected = expected_digests(md5, sha256, "given")
    if dest.exists():
        if expected.mismatch(file_digests(dest, progress)) is None:
            return dest
        log.warning("%s exists but does not match its checksum; downloading it again", dest)
        keep_aside(dest)
    fetch(url, dest, expected, options)
    return dest


def fetch(url: str, dest: Path, expected: Expected, options: Options) -> dict[str, str]:
    """Download, verify, rename; returns the digests. A resumed download that fails its
    checksum is retried once from byte 0: the bytes on disk may come from an older version
    of the file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    while True:
        resumed = transfer(url, part, options)
        digests = file_digests(part, options.progress)
        bad = expected.mismatch(digests)
        if bad is None:
            os.replace(part, dest)
            return digests
        if not resumed:
            raise checksum_error(url, dest, part, expected, bad)
        log.warning("%s: resumed download fails its checksum; starting again from byte 0", url)
        part.unlink()


def transfer(url: str, part: Path, options: Options) -> bool:
    """Fill `part` with the file's bytes; True if it appended to an earlier partial file."""
    scheme = urlsplit(url).scheme.lower()
    transport = _TRANSPORTS.get(scheme)
    if transport is None:
        raise DownloadError(f"{url}: unsupported URL scheme {scheme!r} (use http(s)://, hf:// or gdrive://)")
    return transport(url, part, options)
