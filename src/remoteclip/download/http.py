"""http(s):// transfers: resume with Range requests, retry with exponential backoff.

Contract: `http_download(url, part, options)` fills `part` with the remote file's bytes,
appending to a `part` left by an earlier attempt or run where the server honours Range;
returns whether it resumed (the caller verifies, and restarts from byte 0 once if a
resumed file fails its checksum). Reads the network; writes only `part`.

Kept ours, not pooch (1.9.0, read for this): pooch opens its output with "w+b" and sends
no Range header (pooch/downloaders.py:227-232), streams into a random temporary file that
is deleted on any failure (pooch/utils.py:306-313, pooch/core.py:822), so a transfer cut at
40 of 69 GB restarts from byte 0; `retrieve` does not retry at all (core.py:242), and
`Pooch.fetch(retry_if_failed=n)` waits a linear 1, 2, ... 10 s, ignores Retry-After and
retries a 404 like a 503 (core.py:827-838). Nor gdown's plain-URL download (6.x), which
resumes within a run but does not retry HTTP 5xx/429 and gives up on a server that ignores
Range instead of restarting. Nor urllib3's `Retry` (through requests' HTTPAdapter): it
retries only until response headers arrive, never a body cut mid-transfer, which is the
failure that matters for 10-69 GB archives; a second retry layer under this one would
multiply the attempts. What urllib3 does as well is parse Retry-After (seconds or an HTTP
date), so that is its `Retry.parse_retry_after`.

HTTP goes through `requests` rather than urllib: it is already installed (snakemake and
gdown depend on it), it applies proxy and .netrc settings, keeps the Range header across
redirects to CDNs and mirrors, and its exceptions separate connection failures, read
timeouts and bad URLs, which is what deciding whether to retry needs.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3
from urllib3.util.retry import Retry

from .errors import DownloadError
from .files import CHUNK, Options, progress_bar

log = logging.getLogger(__name__)

USER_AGENT = "remoteclip-download/0.1 (+https://github.com/ChenDelong1999/RemoteCLIP)"
MAX_DELAY = 60.0


class _Transient(Exception):
    """A failure worth retrying; `progressed` says whether bytes arrived first."""

    def __init__(self, reason: str, progressed: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.progressed, self.retry_after = progressed, retry_after


@dataclass
class _State:
    resumed: bool = False


def http_download(url: str, part: Path, options: Options) -> bool:
    """Retry until `part` is whole. A failed attempt that received bytes does not use up a
    retry (the next one resumes); `options.retries` consecutive empty ones give up."""
    state, failures = _State(), 0
    with requests.Session() as session:
        session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        while True:
            try:
                _http_attempt(session, url, part, options, state)
                return state.resumed
            except _Transient as exc:
                failures = 0 if exc.progressed else failures + 1
                if failures > options.retries:
                    raise DownloadError(f"{url}: giving up after {options.retries} retries: {exc}") from exc
                delay = _delay(options.backoff, failures, exc.retry_after)
                if exc.progressed:
                    log.warning("%s: %s; resuming in %.1f s", url, exc, delay)
                else:
                    log.warning("%s: %s; retry %d/%d in %.1f s", url, exc, failures, options.retries, delay)
                time.sleep(delay)


def _delay(backoff: float, failures: int, retry_after: float | None) -> float:
    delay = backoff * 2 ** max(failures - 1, 0)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, MAX_DELAY)


def _http_attempt(session: requests.Session, url: str, part: Path, options: Options, state: _State) -> None:
    if part.exists() and part.stat().st_nlink > 1:
        part.unlink()  # a hard link into the Hugging Face cache: never write through it
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = session.get(url, headers=headers, stream=True, timeout=options.timeout)
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
    ) as exc:
        raise DownloadError(f"{url}: invalid URL: {exc}") from exc
    except requests.RequestException as exc:
        raise _Transient(f"connection failed: {exc}") from exc
    with response:
        start = _start_offset(url, response, offset, part, state)
        if start is not None:
            _stream(url, response, part, start, options)


def _start_offset(url: str, response: requests.Response, offset: int, part: Path, state: _State) -> int | None:
    """Where the response body starts in the file; None when `part` is already whole."""
    status = response.status_code
    if status == 206:
        start = _content_range(response)[0]
        if start != offset:
            part.unlink(missing_ok=True)
            raise _Transient(f"server resumed at byte {start} instead of {offset}; restarting")
        state.resumed = state.resumed or offset > 0
        return offset
    if status == 200:
        if offset:
            log.info("%s: server ignored the Range request; restarting from byte 0", url)
        return 0
    if status == 416:
        _range_not_satisfiable(response, offset, part, state)
        return None
    if status in (408, 425, 429) or status >= 500:
        raise _Transient(f"HTTP {status} {response.reason}", retry_after=_retry_after(response))
    raise DownloadError(f"{url}: HTTP {status} {response.reason}")


def _range_not_satisfiable(response: requests.Response, offset: int, part: Path, state: _State) -> None:
    total = _content_range(response)[2]
    if total is not None and total == offset:
        state.resumed = True  # whole, but from an earlier run: verify, retry if stale
        return
    part.unlink(missing_ok=True)
    raise _Transient(f"HTTP 416: partial file of {offset} bytes does not fit the remote file")


def _content_range(response: requests.Response) -> tuple[int | None, int | None, int | None]:
    """(start, end, total) from `Content-Range: bytes a-b/n` or `bytes */n`."""
    value = response.headers.get("Content-Range", "")
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*", value)
    if not match:
        return None, None, None
    start, end, total = (int(g) if g and g != "*" else None for g in match.groups())
    return start, end, total


def _retry_after(response: requests.Response) -> float | None:
    """Seconds the server asks us to wait, if it says (and says it legibly)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(Retry().parse_retry_after(value))
    except urllib3.exceptions.InvalidHeader:
        return None


def _total_size(response: requests.Response, start: int) -> int | None:
    if response.status_code == 206:
        total = _content_range(response)[2]
        if total is not None:
            return total
    length = response.headers.get("Content-Length")
    return start + int(length) if length and length.isdigit() else None


def _stream(url: str, response: requests.Response, part: Path, start: int, options: Options) -> None:
    total = _total_size(response, start)
    received = 0
    with (
        open(part, "ab" if start else "wb") as fh,
        progress_bar(total, start, part.name.removesuffix(".part"), options.progress) as bar,
    ):
        try:
            # Raw bytes: a transparently decoded body would not match Range offsets.
            for chunk in response.raw.stream(CHUNK, decode_content=False):
                fh.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        except (urllib3.exceptions.HTTPError, requests.RequestException) as exc:
            raise _Transient(f"transfer broke at byte {start + received}: {exc}", progressed=received > 0) from exc
    if total is not None and start + received < total:
        raise _Transient(f"connection closed at byte {start + received} of {total}", progressed=received > 0)
