"""Dataset downloads: resumable, retried, checksum-verified, and safe to interrupt.

`fetch_file` gets one URL into one file. `fetch_dataset` gets every file of a catalogue
entry into an archives folder, extracts the archives into `<root>` (and archives shipped
inside them, where the catalogue's `nested` globs name them) and writes `<root>/.verified`
last, so the marker exists only when everything succeeded. On a cluster the same happens in
two steps: `fetch_archives` (only the transfer, on a login node with internet; writes
`.fetched`) and `install_archives` (checksums and extraction, a normal compute job).

URL schemes:
    http(s)://...                              requests, with Range resume and retries
    hf://datasets/<owner>/<repo>/<path>[@rev]  huggingface_hub.hf_hub_download (honours
    hf://models/<owner>/<repo>/<path>[@rev]    HF_ENDPOINT, HF_HUB_OFFLINE, HF_TOKEN, HF_HOME);
                                               `<repo>@<rev>/<path>` is accepted too
    gdrive://<file id>                         gdown (handles Drive's confirmation pages)

Checksums: a catalogue file's published md5 and/or sha256 are checked. A file without one
is trusted on first use: its sha256 goes into a YAML lock file that users commit, and every
later download is checked against it. A wrong file is kept aside as `<name>.bad` for
inspection and never marked complete.

HTTP goes through `requests` rather than urllib: it is already installed (snakemake and
gdown depend on it), it applies proxy and .netrc settings, keeps the Range header across
redirects to CDNs and mirrors, and its exceptions separate connection failures, read
timeouts and bad URLs, which is what deciding whether to retry needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
import yaml
from tqdm import tqdm

from .extract import ExtractError, extract_in_place, is_archive, safe_extract

__all__ = [
    "ChecksumError",
    "ChecksumLock",
    "DownloadError",
    "HfRef",
    "ManualDownloadRequired",
    "VERIFIED_MARKER",
    "fetch_archives",
    "fetch_dataset",
    "fetch_file",
    "install_archives",
    "file_digests",
    "parse_gdrive_url",
    "parse_hf_url",
]

log = logging.getLogger(__name__)

VERIFIED_MARKER = ".verified"
FETCHED_MARKER = ".fetched"
MANUAL_NOTE = "WHAT-TO-PUT-HERE.txt"  # the manual steps, beside where the files go
ARCHIVES_DIR = ".archives"  # archives beside the data when no archives folder is given
CHUNK = 1 << 20
USER_AGENT = "remoteclip-download/0.1 (+https://github.com/ChenDelong1999/RemoteCLIP)"
MAX_DELAY = 60.0


class DownloadError(RuntimeError):
    """A file could not be downloaded; the message names the URL and the reason."""


class ChecksumError(DownloadError):
    """Downloaded or placed bytes do not match the expected digest."""

    def __init__(self, message: str, *, url: str, algorithm: str, expected: str,
                 actual: str, kept: Path | None) -> None:
        super().__init__(message)
        self.url, self.algorithm = url, algorithm
        self.expected, self.actual, self.kept = expected, actual, kept


class ManualDownloadRequired(DownloadError):
    """Some files must be fetched by hand; the message says from where and to which path."""

    def __init__(self, message: str, *, dataset: str, files: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.dataset, self.files = dataset, files


@dataclass(frozen=True)
class _Options:
    retries: int = 5
    backoff: float = 1.0
    timeout: float = 60.0
    progress: bool = True


@dataclass(frozen=True)
class _Expected:
    """Digests a file must have, and where they come from (for error messages)."""

    digests: dict[str, str] = field(default_factory=dict)
    origin: str = "given"

    def mismatch(self, actual: dict[str, str]) -> tuple[str, str, str] | None:
        for algorithm, want in self.digests.items():
            if actual[algorithm] != want:
                return algorithm, want, actual[algorithm]
        return None


def _expected(md5: str | None, sha256: str | None, origin: str) -> _Expected:
    digests = {}
    for algorithm, value, length in (("md5", md5, 32), ("sha256", sha256, 64)):
        if value is None:
            continue
        value = str(value).strip().lower()
        if not re.fullmatch(f"[0-9a-f]{{{length}}}", value):
            raise ValueError(f"{algorithm} {value!r} ({origin}) is not {length} hex digits")
        digests[algorithm] = value
    return _Expected(digests, origin)


# ---- public: one file --------------------------------------------------------------------


def fetch_file(url: str, dest: Path, *, md5: str | None = None, sha256: str | None = None,
               retries: int = 5, backoff: float = 1.0, timeout: float = 60.0,
               progress: bool = True) -> Path:
    """Download `url` to `dest` via `dest.part`; rename only once the checksums pass.

    `retries` counts consecutive failed attempts that made no progress (a transfer that
    breaks after receiving bytes resumes without using one up); the wait before retry n
    is `backoff * 2**(n-1)` seconds, capped at 60. `timeout` is per connect/read."""
    dest = Path(dest)
    options = _Options(retries=retries, backoff=backoff, timeout=timeout, progress=progress)
    expected = _expected(md5, sha256, "given")
    if dest.exists():
        if expected.mismatch(file_digests(dest, progress)) is None:
            return dest
        log.warning("%s exists but does not match its checksum; downloading it again", dest)
        _keep_aside(dest)
    _fetch(url, dest, expected, options)
    return dest


def file_digests(path: Path, progress: bool = False) -> dict[str, str]:
    """md5 and sha256 of a file, computed in one read."""
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    size = Path(path).stat().st_size
    with open(path, "rb") as fh, _bar(size, 0, f"verify {Path(path).name}", progress) as bar:
        while chunk := fh.read(CHUNK):
            md5.update(chunk)
            sha256.update(chunk)
            bar.update(len(chunk))
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def _fetch(url: str, dest: Path, expected: _Expected, options: _Options) -> dict[str, str]:
    """Download, verify, rename. A resumed download that fails its checksum is retried
    once from byte 0: the bytes on disk may come from an older version of the file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dest)
    while True:
        resumed = _transfer(url, part, options)
        digests = file_digests(part, options.progress)
        bad = expected.mismatch(digests)
        if bad is None:
            os.replace(part, dest)
            return digests
        if not resumed:
            raise _checksum_error(url, dest, part, expected, bad)
        log.warning("%s: resumed download fails its checksum; starting again from byte 0", url)
        part.unlink()


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _keep_aside(path: Path) -> Path:
    kept = path.with_name(path.name + ".bad")
    os.replace(path, kept)
    return kept


def _checksum_error(url: str, dest: Path, part: Path, expected: _Expected,
                    bad: tuple[str, str, str]) -> ChecksumError:
    algorithm, want, got = bad
    kept = dest.with_name(dest.name + ".bad")
    os.replace(part, kept)
    return ChecksumError(
        f"{url}: checksum mismatch for {dest.name}: expected {algorithm} {want} "
        f"({expected.origin}), got {got}. The downloaded bytes are kept at {kept} for "
        "inspection; nothing was marked complete.",
        url=url, algorithm=algorithm, expected=want, actual=got, kept=kept,
    )


def _transfer(url: str, part: Path, options: _Options) -> bool:
    """Fill `part` with the file's bytes; True if it appended to an earlier partial file."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return _http_download(url, part, options)
    if scheme == "hf":
        return _hf_download(url, part, options)
    if scheme == "gdrive":
        return _gdrive_download(url, part, options)
    raise DownloadError(f"{url}: unsupported URL scheme {scheme!r} (use http(s)://, hf:// or gdrive://)")


def _bar(total: int | None, initial: int, desc: str, progress: bool) -> tqdm:
    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, disable=not progress, leave=False)


# ---- http(s) --------------------------------------------------------------------------------


class _Transient(Exception):
    """A failure worth retrying; `progressed` says whether bytes arrived first."""

    def __init__(self, reason: str, progressed: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.progressed, self.retry_after = progressed, retry_after


@dataclass
class _State:
    resumed: bool = False


def _http_download(url: str, part: Path, options: _Options) -> bool:
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


def _http_attempt(session: requests.Session, url: str, part: Path, options: _Options,
                  state: _State) -> None:
    if part.exists() and part.stat().st_nlink > 1:
        part.unlink()  # a hard link into the Hugging Face cache: never write through it
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = session.get(url, headers=headers, stream=True, timeout=options.timeout)
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema) as exc:
        raise DownloadError(f"{url}: invalid URL: {exc}") from exc
    except requests.RequestException as exc:
        raise _Transient(f"connection failed: {exc}") from exc
    with response:
        start = _start_offset(url, response, offset, part, state)
        if start is not None:
            _stream(url, response, part, start, options)


def _start_offset(url: str, response: requests.Response, offset: int, part: Path,
                  state: _State) -> int | None:
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
        return _range_not_satisfiable(response, offset, part, state)
    if status in (408, 425, 429) or status >= 500:
        raise _Transient(f"HTTP {status} {response.reason}", retry_after=_retry_after(response))
    raise DownloadError(f"{url}: HTTP {status} {response.reason}")


def _range_not_satisfiable(response: requests.Response, offset: int, part: Path,
                           state: _State) -> None:
    total = _content_range(response)[2]
    if total is not None and total == offset:
        state.resumed = True  # whole, but from an earlier run: verify, retry if stale
        return None
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
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


def _total_size(response: requests.Response, start: int) -> int | None:
    if response.status_code == 206:
        total = _content_range(response)[2]
        if total is not None:
            return total
    length = response.headers.get("Content-Length")
    return start + int(length) if length and length.isdigit() else None


def _stream(url: str, response: requests.Response, part: Path, start: int,
            options: _Options) -> None:
    total = _total_size(response, start)
    received = 0
    with open(part, "ab" if start else "wb") as fh, \
            _bar(total, start, part.name.removesuffix(".part"), options.progress) as bar:
        try:
            # Raw bytes: a transparently decoded body would not match Range offsets.
            for chunk in response.raw.stream(CHUNK, decode_content=False):
                fh.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        except (urllib3.exceptions.HTTPError, requests.RequestException) as exc:
            raise _Transient(f"transfer broke at byte {start + received}: {exc}",
                             progressed=received > 0) from exc
    if total is not None and start + received < total:
        raise _Transient(f"connection closed at byte {start + received} of {total}",
                         progressed=received > 0)


# ---- hf:// --------------------------------------------------------------------------------


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


def _hf_offline() -> bool:
    from huggingface_hub import constants

    # constants are read when huggingface_hub is imported; the variable may be set later.
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return bool(constants.HF_HUB_OFFLINE) or env in {"1", "ON", "YES", "TRUE"}


def _hf_download(url: str, part: Path, options: _Options) -> bool:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    ref, offline = parse_hf_url(url), _hf_offline()
    try:
        cached = hf_hub_download(ref.repo_id, ref.filename, repo_type=ref.repo_type,
                                 revision=ref.revision, local_files_only=offline)
    except LocalEntryNotFoundError as exc:
        raise DownloadError(_hf_not_cached(url, ref, offline, part)) from exc
    except Exception as exc:  # the Hub's errors (not found, gated, HTTP) all get the URL added
        raise DownloadError(f"{url}: Hugging Face Hub download failed ({type(exc).__name__}: {exc})") from exc
    _link_or_copy(Path(cached).resolve(), part)
    return False


def _hf_not_cached(url: str, ref: HfRef, offline: bool, part: Path) -> str:
    from huggingface_hub import constants

    where = f"{ref.filename} from {ref.repo_type} {ref.repo_id}" + (f"@{ref.revision}" if ref.revision else "")
    if offline:
        return (f"{url}: HF_HUB_OFFLINE is set and {where} is not in the Hugging Face cache "
                f"({constants.HF_HUB_CACHE}); unset HF_HUB_OFFLINE to download it, or put the "
                f"file at {_dest_of(part)}")
    return (f"{url}: the Hugging Face Hub ({constants.ENDPOINT}) could not be reached and {where} "
            "is not cached; check the network, HF_ENDPOINT and proxy settings")


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link the cached blob (no extra disk space) or copy it across file systems."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _dest_of(part: Path) -> Path:
    return part.with_name(part.name.removesuffix(".part"))


# ---- gdrive:// ----------------------------------------------------------------------------


def parse_gdrive_url(url: str) -> str:
    """The Drive file id of `gdrive://<file id>`."""
    match = re.fullmatch(r"gdrive://([-\w]{10,})/?", url)
    if not match:
        raise DownloadError(f"{url}: malformed gdrive:// URL; expected gdrive://<file id>")
    return match.group(1)


def _gdrive_download(url: str, part: Path, options: _Options) -> bool:
    file_id = parse_gdrive_url(url)
    try:
        import gdown
    except ImportError as exc:
        raise DownloadError(f"{url}: gdrive:// URLs need the gdown package (pip install gdown)") from exc
    # gdown resumes from its own temporary file and skips an existing output, so a stale
    # `.part` of ours must not be mistaken for a finished download.
    part.unlink(missing_ok=True)
    try:
        gdown.download(id=file_id, output=str(part), quiet=not options.progress, resume=True,
                       retries=options.retries, timeout=options.timeout)
    except (gdown.exceptions.DownloadError, requests.RequestException, OSError) as exc:
        raise DownloadError(_gdrive_failed(url, file_id, part, exc)) from exc
    if not part.is_file():
        raise DownloadError(_gdrive_failed(url, file_id, part, "no file was written"))
    return False


def _gdrive_failed(url: str, file_id: str, part: Path, exc: object) -> str:
    return (f"{url}: Google Drive download of file {file_id} failed ({type(exc).__name__}: {exc}). "
            "Drive refuses some downloads (quota exceeded, sign-in required); open "
            f"https://drive.google.com/uc?id={file_id} in a browser and put the file at {_dest_of(part)}")


# ---- trust on first use -------------------------------------------------------------------

_LOCK_HEADER = """\
# Trust-on-first-use checksums for files that have no published checksum.
# Written by the workflow after the first successful download of each file.
# Commit this file: later downloads (yours and other people's) are checked against it.
# To accept a changed upstream file on purpose, delete its entry and download it again.
"""


class ChecksumLock:
    """A YAML file of `{<section>: {group: {file: {sha256, size, source}}}}`; the section is
    `datasets` (groups are datasets) or `weights` (groups are weight sources)."""

    def __init__(self, path: Path, section: str = "datasets") -> None:
        self.path, self.section = Path(path), section

    def get(self, dataset: str, filename: str) -> dict[str, Any] | None:
        return self._load().get(dataset, {}).get(filename)

    def record(self, dataset: str, filename: str, sha256: str, size: int, source: str) -> None:
        with self._exclusive():
            data = self._load()
            old = data.get(dataset, {}).get(filename)
            if old is not None and old.get("sha256") != sha256:
                raise ChecksumError(
                    f"{self.path}: {dataset}/{filename} is already recorded with sha256 "
                    f"{old.get('sha256')}, not {sha256}",
                    url=source, algorithm="sha256", expected=str(old.get("sha256")),
                    actual=sha256, kept=None)
            data.setdefault(dataset, {})[filename] = {"sha256": sha256, "size": size, "source": source}
            self._save(data)

    def _load(self) -> dict[str, dict[str, dict[str, Any]]]:
        if not self.path.exists():
            return {}
        try:
            doc = yaml.safe_load(self.path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise DownloadError(f"{self.path}: checksum lock file is not valid YAML: {exc}") from exc
        groups = doc.get(self.section, {}) if isinstance(doc, dict) else None
        if not isinstance(groups, dict):
            raise DownloadError(f"{self.path}: checksum lock file must hold a '{self.section}:' mapping")
        return groups

    def _save(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        body = yaml.safe_dump({self.section: data}, sort_keys=True, default_flow_style=False)
        tmp.write_text(_LOCK_HEADER + body)
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def _exclusive(self):
        """Parallel download jobs share one lock file: serialise read-modify-write by
        locking its folder (no extra file to commit or ignore)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # Windows: no parallel-safety, but still correct alone
            yield
            return
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


# ---- public: one dataset ----------------------------------------------------------------------


@dataclass(frozen=True)
class _FileSpec:
    name: str
    urls: tuple[str, ...]
    md5: str | None
    sha256: str | None
    extract: bool
    subdir: str | None
    manual_from: str | None
    nested: tuple[str, ...] = ()  # globs of archives inside this one, unpacked in place


def fetch_dataset(name: str, entry: dict, root: Path, lock_path: Path, progress: bool = True,
                  *, retries: int = 5, backoff: float = 1.0, timeout: float = 60.0,
                  archives: Path | None = None) -> Path:
    """Fetch, verify and extract every file of catalogue entry `entry` into `root`, in one go
    (`fetch_archives` then `install_archives` does the same in two steps, for clusters).

    Archives go to `archives` (default `<root>/.archives`). Returns `root` once
    `root/.verified` is written. A current marker (same files and published checksums)
    makes this a no-op, so archives may be deleted after extraction."""
    root, lock = Path(root), ChecksumLock(lock_path)
    archives = Path(archives) if archives is not None else root / ARCHIVES_DIR
    specs = _file_specs(name, entry)
    marker = root / VERIFIED_MARKER
    if _marker_is_current(marker, specs):
        return root
    marker.unlink(missing_ok=True)
    options = _Options(retries=retries, backoff=backoff, timeout=timeout, progress=progress)
    records, missing = [], []
    for spec in specs:
        try:
            records.append(_obtain(name, spec, archives, lock, options))
        except _Missing as gap:
            missing.append(gap)
    if missing:
        archives.mkdir(parents=True, exist_ok=True)  # ready for the user's files
        raise _manual_error(name, entry, missing, lock)
    for spec in specs:
        _install(spec, archives / spec.name, root, progress)
    _write_marker(marker, name, records)
    return root


def fetch_archives(name: str, entry: dict, archives: Path, root: Path, lock_path: Path, progress: bool = True,
                   *, retries: int = 5, backoff: float = 1.0, timeout: float = 60.0) -> Path:
    """The part that needs the internet (a login node's job): download every file of the
    entry that is not in `archives` yet, without checksum verification (a resumed transfer
    included; `install_archives` verifies every byte). Files already there (placed by hand,
    or fetched earlier) are left as they are; missing manual files raise with their paths.
    Writes and returns `archives/.fetched`. Nothing is fetched when `root` is already
    installed from the same files (current `.verified`)."""
    archives, lock = Path(archives), ChecksumLock(lock_path)
    specs = _file_specs(name, entry)
    options = _Options(retries=retries, backoff=backoff, timeout=timeout, progress=progress)
    fetched = archives / FETCHED_MARKER
    if _marker_is_current(Path(root) / VERIFIED_MARKER, specs):
        return _write_json(fetched, {"dataset": name, "installed": True, "files": [s.name for s in specs]})
    records, missing = [], []
    for spec in specs:
        path = archives / spec.name
        if path.is_file():
            records.append({"name": spec.name, "size": path.stat().st_size, "source": "existing file"})
            continue
        try:
            source = _transfer_any(spec, path, options)
        except _Missing as gap:
            missing.append(gap)
            continue
        records.append({"name": spec.name, "size": path.stat().st_size, "source": source})
    if missing:
        error = _manual_error(name, entry, missing, lock)
        archives.mkdir(parents=True, exist_ok=True)  # ready for the user's files, with what they are
        (archives / MANUAL_NOTE).write_text(str(error) + "\n")
        raise error
    return _write_json(fetched, {"dataset": name, "installed": False, "files": records})


def install_archives(name: str, entry: dict, archives: Path, root: Path, lock_path: Path,
                     progress: bool = True) -> Path:
    """The part that needs CPU and disk, not the internet (a compute job): verify every file
    in `archives` (published checksum, else the lock, else record its sha256 on first use),
    extract into `root` (nested archives too) and write `root/.verified` last.

    A file that fails its checksum is moved aside as `<name>.bad` (a hand-placed one stays
    for the user to replace) and `archives/.fetched` is removed, so the next run fetches it
    again. A current `.verified` makes this a no-op."""
    archives, root, lock = Path(archives), Path(root), ChecksumLock(lock_path)
    specs = _file_specs(name, entry)
    marker = root / VERIFIED_MARKER
    if _marker_is_current(marker, specs):
        return root
    marker.unlink(missing_ok=True)
    options = _Options(progress=progress)
    records = []
    for spec in specs:
        path = archives / spec.name
        if not path.is_file():
            (archives / FETCHED_MARKER).unlink(missing_ok=True)
            raise DownloadError(f"dataset {name!r}: {path} is missing; fetch it first (the fetch_dataset rule, "
                                "on a machine with internet)")
        try:
            records.append(_verified_record(name, spec, path, lock, options))
        except ChecksumError:
            (archives / FETCHED_MARKER).unlink(missing_ok=True)
            raise
    for spec in specs:
        _install(spec, archives / spec.name, root, progress)
    _write_marker(marker, name, records)
    return root


def _transfer_any(spec: _FileSpec, path: Path, options: _Options) -> str:
    """Transfer the file from the first URL that works (no verification); returns the URL."""
    failures: list[str] = []
    path.parent.mkdir(parents=True, exist_ok=True)
    for url in spec.urls:
        try:
            _transfer(url, _part_path(path), options)
        except DownloadError as exc:
            log.warning("%s", exc)
            failures.append(str(exc))
            continue
        os.replace(_part_path(path), path)
        return url
    if spec.manual_from is not None or not spec.urls:
        raise _Missing(spec, path, failures)
    lines = "\n".join(f"  - {f}" for f in failures)
    raise DownloadError(f"{spec.name}: every URL failed:\n{lines}\n"
                        f"You can also download it yourself and put it at {path.absolute()}")


def _verified_record(dataset: str, spec: _FileSpec, path: Path, lock: ChecksumLock,
                     options: _Options) -> dict[str, Any]:
    expected, published = _expected_for(dataset, spec, lock)
    digests = file_digests(path, options.progress)
    bad = expected.mismatch(digests)
    if bad is not None:
        algorithm, want, got = bad
        kept = path if not spec.urls else _keep_aside(path)
        raise ChecksumError(f"{path}: {algorithm} {got}, but {want} is expected ({expected.origin}); "
                            + ("replace it with the right file" if not spec.urls else
                               f"kept aside at {kept}; the next run downloads it again"),
                            url=str(path), algorithm=algorithm, expected=want, actual=got, kept=kept)
    if not published and not expected.digests:
        lock.record(dataset, spec.name, digests["sha256"], path.stat().st_size, "fetched file")
        log.info("%s/%s: no published checksum; recorded sha256 %s in %s",
                 dataset, spec.name, digests["sha256"], lock.path)
    verified_by = (next(iter(expected.digests)) if published
                   else "lock" if expected.digests else "recorded on first use")
    return {"name": spec.name, "size": path.stat().st_size, **digests, "verified_by": verified_by,
            "subdir": spec.subdir, "extract": spec.extract, "nested": list(spec.nested)}


def _write_json(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def _file_specs(dataset: str, entry: dict) -> list[_FileSpec]:
    manual = entry.get("manual") or {}
    manual_files = manual.get("files") or []
    sources = {f.get("name"): f.get("from") for f in manual_files}
    files = list(entry.get("files") or [])
    listed = {f.get("name") for f in files}
    files += [f for f in manual_files if f.get("name") not in listed]
    if not files:
        raise ValueError(f"dataset {dataset!r}: the catalogue entry lists no files")
    return [_file_spec(dataset, f, sources) for f in files]


def _file_spec(dataset: str, f: dict, sources: dict[str, str | None]) -> _FileSpec:
    name = f.get("name")
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"dataset {dataset!r}: file name {name!r} must be a plain file name")
    subdir = f.get("subdir")
    if subdir is not None and (Path(subdir).is_absolute() or ".." in Path(subdir).parts):
        raise ValueError(f"dataset {dataset!r}: subdir {subdir!r} of {name} must stay inside the dataset folder")
    urls = f.get("urls", [])
    if isinstance(urls, str):
        urls = [urls]
    extract = bool(f.get("extract", is_archive(name)))
    nested = tuple(f.get("nested") or ())
    for pattern in nested:
        if not isinstance(pattern, str) or not pattern or Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise ValueError(f"dataset {dataset!r}: nested pattern {pattern!r} of {name} must be a relative glob "
                             "inside the extracted archive")
    if nested and not extract:
        raise ValueError(f"dataset {dataset!r}: {name} lists nested archives but is not extracted")
    return _FileSpec(name=name, urls=tuple(urls), md5=f.get("md5"), sha256=f.get("sha256"),
                     extract=extract, subdir=subdir, manual_from=sources.get(name), nested=nested)


class _Missing(Exception):
    """A file that has to be placed by hand (no URL, or every URL failed)."""

    def __init__(self, spec: _FileSpec, path: Path, failures: list[str]):
        super().__init__(spec.name)
        self.spec, self.path, self.failures = spec, path, failures


def _expected_for(dataset: str, spec: _FileSpec, lock: ChecksumLock) -> tuple[_Expected, bool]:
    """The digests to check, and whether they are published (False: lock or nothing)."""
    if spec.md5 or spec.sha256:
        return _expected(spec.md5, spec.sha256, "published in the dataset catalogue"), True
    locked = lock.get(dataset, spec.name)
    if locked:
        return _expected(None, locked.get("sha256"), f"recorded in {lock.path} on first use"), False
    return _Expected(origin="none"), False


def _obtain(dataset: str, spec: _FileSpec, archives: Path, lock: ChecksumLock,
            options: _Options) -> dict[str, Any]:
    path = archives / spec.name
    expected, published = _expected_for(dataset, spec, lock)
    digests = _existing(path, spec, expected, options)
    source = "existing file"
    if digests is None:
        digests, source = _download_any(spec, path, expected, options)
    if not published and not expected.digests:
        lock.record(dataset, spec.name, digests["sha256"], path.stat().st_size, source)
        log.info("%s/%s: no published checksum; recorded sha256 %s in %s",
                 dataset, spec.name, digests["sha256"], lock.path)
    verified_by = (next(iter(expected.digests)) if published
                   else "lock" if expected.digests else "recorded on first use")
    return {"name": spec.name, "size": path.stat().st_size, **digests,
            "verified_by": verified_by, "subdir": spec.subdir, "extract": spec.extract,
            "nested": list(spec.nested)}


def _existing(path: Path, spec: _FileSpec, expected: _Expected,
              options: _Options) -> dict[str, str] | None:
    """Digests of a file already at its archive path if it verifies, else None."""
    if not path.is_file():
        return None
    digests = file_digests(path, options.progress)
    bad = expected.mismatch(digests)
    if bad is None:
        return digests
    if not spec.urls:  # placed by hand: leave it for the user to inspect and replace
        algorithm, want, got = bad
        raise ChecksumError(
            f"{path}: the file placed here has {algorithm} {got}, but {want} is expected "
            f"({expected.origin}); replace it with the right file",
            url=str(path), algorithm=algorithm, expected=want, actual=got, kept=path)
    log.warning("%s does not match its checksum; kept as .bad and downloaded again", path)
    _keep_aside(path)
    return None


def _download_any(spec: _FileSpec, path: Path, expected: _Expected,
                  options: _Options) -> tuple[dict[str, str], str]:
    """Try the URLs in catalogue order (official first, mirrors after)."""
    failures: list[DownloadError] = []
    for url in spec.urls:
        try:
            return _fetch(url, path, expected, options), url
        except DownloadError as exc:
            log.warning("%s", exc)
            failures.append(exc)
    if spec.manual_from is not None or not spec.urls:
        raise _Missing(spec, path, [str(f) for f in failures])
    raise _all_failed(spec, path, failures) from failures[-1]


def _all_failed(spec: _FileSpec, path: Path, failures: list[DownloadError]) -> DownloadError:
    """One error listing every URL's failure; a ChecksumError when all were checksum
    failures, so callers can tell "wrong bytes" from "no bytes"."""
    lines = "\n".join(f"  - {f}" for f in failures)
    message = (f"{spec.name}: every URL failed:\n{lines}\n"
               f"You can also download it yourself and put it at {path.absolute()}")
    last = failures[-1]
    if all(isinstance(f, ChecksumError) for f in failures):
        return ChecksumError(message, url=last.url, algorithm=last.algorithm,
                             expected=last.expected, actual=last.actual, kept=last.kept)
    return DownloadError(message)


def _manual_error(dataset: str, entry: dict, missing: list[_Missing],
                  lock: ChecksumLock) -> ManualDownloadRequired:
    manual = entry.get("manual") or {}
    lines = [f"Dataset {dataset!r} needs files that must be downloaded by hand."]
    if manual.get("instructions"):
        lines += ["", str(manual["instructions"]).strip()]
    lines += ["", "Put each file at exactly this path, then run the workflow again:"]
    for gap in missing:
        lines += _manual_lines(gap, dataset, lock)
    files = [{"name": g.spec.name, "from": g.spec.manual_from, "path": str(g.path)} for g in missing]
    return ManualDownloadRequired("\n".join(lines), dataset=dataset, files=files)


def _manual_lines(gap: _Missing, dataset: str, lock: ChecksumLock) -> list[str]:
    spec = gap.spec
    lines = [f"  - {spec.name}", f"      get it from: {spec.manual_from or '(see the instructions)'}",
             f"      put it at:   {gap.path.absolute()}"]
    expected, _ = _expected_for(dataset, spec, lock)
    for algorithm, value in expected.digests.items():
        lines.append(f"      expected {algorithm}: {value}")
    if not expected.digests:
        lines.append(f"      (no published checksum: its sha256 will be recorded in {lock.path})")
    lines += [f"      automatic download failed: {f}" for f in gap.failures]
    return lines


def _install(spec: _FileSpec, archive: Path, root: Path, progress: bool) -> None:
    target = root / spec.subdir if spec.subdir else root
    if spec.extract:
        safe_extract(archive, target, progress=progress)
        for pattern in spec.nested:
            _unpack_nested(spec, target, pattern, progress)
        return
    target.mkdir(parents=True, exist_ok=True)
    out = target / spec.name
    out.unlink(missing_ok=True)
    _link_or_copy(archive, out)


def _unpack_nested(spec: _FileSpec, target: Path, pattern: str, progress: bool) -> None:
    """Archives shipped inside the archive (UCM-Captions' imgs.rar, MLRSNet's one .rar per
    category) are unpacked too, each into a folder named after it."""
    found = sorted(p for p in target.glob(pattern) if p.is_file() and is_archive(p.name))
    if not found:
        raise ExtractError(f"{spec.name}: no archive matches the catalogue's nested pattern {pattern!r} "
                           f"under {target} after extraction; the archive's layout differs from the catalogue")
    for inner in tqdm(found, desc=f"unpack {pattern}", unit=" archives", disable=not progress or len(found) < 2):
        log.info("%s: unpacking %s", spec.name, inner.relative_to(target))
        extract_in_place(inner, progress=progress)


def _marker_is_current(marker: Path, specs: list[_FileSpec]) -> bool:
    try:
        recorded = json.loads(marker.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if [r.get("name") for r in recorded] != [s.name for s in specs]:
        return False
    return all(_record_matches(r, s) for r, s in zip(recorded, specs))


def _record_matches(record: dict, spec: _FileSpec) -> bool:
    if (record.get("subdir"), record.get("extract"), record.get("nested", [])) != (
            spec.subdir, spec.extract, list(spec.nested)):
        return False
    published = _expected(spec.md5, spec.sha256, "catalogue").digests
    return all(record.get(algorithm) == value for algorithm, value in published.items())


def _write_marker(marker: Path, dataset: str, records: list[dict[str, Any]]) -> None:
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps({"dataset": dataset, "files": records}, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, marker)
