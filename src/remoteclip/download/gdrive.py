"""gdrive:// transfers through gdown, which does Drive's part: the virus-scan confirmation
page, cookies, resume and retries. Ours is only the URL syntax and the error message.

Contract: `gdrive_download(url, part, options)` writes the Drive file to `part`; returns
False (gdown resumes from its own temporary file, never from our `.part`). Reads the
network; writes `part` and gdown's temporary file beside it.

    gdrive://<file id>
"""

from __future__ import annotations

import re
from pathlib import Path

import requests

from .errors import DownloadError
from .files import Options, dest_of


def parse_gdrive_url(url: str) -> str:
    """The Drive file id of `gdrive://<file id>`."""
    match = re.fullmatch(r"gdrive://([-\w]{10,})/?", url)
    if not match:
        raise DownloadError(f"{url}: malformed gdrive:// URL; expected gdrive://<file id>")
    return match.group(1)


def gdrive_download(url: str, part: Path, options: Options) -> bool:
    file_id = parse_gdrive_url(url)
    try:
        import gdown
    except ImportError as exc:
        raise DownloadError(f"{url}: gdrive:// URLs need the gdown package (pip install gdown)") from exc
    # gdown resumes from its own temporary file and skips an existing output, so a stale
    # `.part` of ours must not be mistaken for a finished download.
    part.unlink(missing_ok=True)
    try:
        gdown.download(
            id=file_id,
            output=str(part),
            quiet=not options.progress,
            resume=True,
            retries=options.retries,
            timeout=options.timeout,
        )
    except (gdown.exceptions.DownloadError, requests.RequestException, OSError) as exc:
        raise DownloadError(_gdrive_failed(url, file_id, part, exc)) from exc
    if not part.is_file():
        raise DownloadError(_gdrive_failed(url, file_id, part, "no file was written"))
    return False


def _gdrive_failed(url: str, file_id: str, part: Path, exc: object) -> str:
    return (
        f"{url}: Google Drive download of file {file_id} failed ({type(exc).__name__}: {exc}). "
        "Drive refuses some downloads (quota exceeded, sign-in required); open "
        f"https://drive.google.com/uc?id={file_id} in a browser and put the file at {dest_of(part)}"
    )
