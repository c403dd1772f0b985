"""Dataset level: every file of a catalogue entry, fetched, verified and installed.

Contract, in one go (`fetch_dataset`): reads the entry's URLs (or files placed by hand
in the archives folder, default `<root>/.archives`), writes the archives there, the
dataset under `<root>`, first-use digests into the lock file, and `<root>/.verified`
last, so the marker exists only when everything succeeded. On a cluster the same happens
in two steps: `fetch_archives` (only the transfer, on a login node with internet; writes
`<archives>/.fetched`) then `install_archives` (checksums and extraction, a compute job;
writes `<root>/.verified`). Files that must be fetched by hand raise
`ManualDownloadRequired` with their exact paths.

Each file keeps markers of its own on the way (archive.py: `<file>.fetched`, `<file>.verified`
beside it, `<root>/.extracted/<file>`), so a run that fails or is killed on the last of many
archives redoes that archive only; the workflow runs the same steps as one job per file
(workflow/rules/download.smk).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .archive import (
    install_step,
    is_extracted,
    markers_of,
    record_of,
    transfer_any,
    verified_record,
    verify_archive,
    without_identity,
)
from .checksums import Expected, file_digests
from .errors import ChecksumError, DownloadError
from .fetch import fetch
from .files import Options, keep_aside, write_json
from .install import VERIFIED_MARKER, marker_is_current, write_marker
from .lock import ChecksumLock
from .manual import MANUAL_NOTE, Missing, manual_error
from .specs import FileSpec, expected_for, file_specs

log = logging.getLogger(__name__)

FETCHED_MARKER = ".fetched"
ARCHIVES_DIR = ".archives"  # archives beside the data when no archives folder is given


# ---- public ------------------------------------------------------------------------------


def fetch_dataset(
    name: str,
    entry: dict,
    root: Path,
    lock_path: Path,
    progress: bool = True,
    *,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60.0,
    archives: Path | None = None,
) -> Path:
    """Fetch, verify and extract every file of catalogue entry `entry` into `root`, in one go
    (`fetch_archives` then `install_archives` does the same in two steps, for clusters).

    Archives go to `archives` (default `<root>/.archives`). Returns `root` once
    `root/.verified` is written. A current marker (same files and published checksums)
    makes this a no-op, so archives may be deleted after extraction."""
    root, lock = Path(root), ChecksumLock(lock_path)
    archives = Path(archives) if archives is not None else root / ARCHIVES_DIR
    specs = file_specs(name, entry)
    marker = root / VERIFIED_MARKER
    if marker_is_current(marker, specs):
        return root
    marker.unlink(missing_ok=True)
    options = Options(retries=retries, backoff=backoff, timeout=timeout, progress=progress)
    records, missing = [], []
    for spec in specs:
        try:
            records.append(_obtain(name, spec, archives, root, lock, options))
        except Missing as gap:
            missing.append(gap)
    if missing:
        archives.mkdir(parents=True, exist_ok=True)  # ready for the user's files
        raise manual_error(name, entry, missing, lock)
    installed = False
    for spec, record in zip(specs, records):
        installed |= install_step(name, entry, spec.name, archives, root, record, installed, progress)
    write_marker(marker, name, records)
    return root


def fetch_archives(
    name: str,
    entry: dict,
    archives: Path,
    root: Path,
    lock_path: Path,
    progress: bool = True,
    *,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> Path:
    """The part that needs the internet (a login node's job): download every file of the
    entry that is not in `archives` yet, without checksum verification (a resumed transfer
    included; `install_archives` verifies every byte). Files already there (placed by hand,
    or fetched earlier) are left as they are; missing manual files raise with their paths.
    Writes `<file>.fetched` per file and returns `archives/.fetched`. Nothing is fetched when
    `root` is already installed from the same files (current `.verified`)."""
    archives, lock = Path(archives), ChecksumLock(lock_path)
    specs = file_specs(name, entry)
    options = Options(retries=retries, backoff=backoff, timeout=timeout, progress=progress)
    fetched = archives / FETCHED_MARKER
    if marker_is_current(Path(root) / VERIFIED_MARKER, specs):
        return write_json(fetched, {"dataset": name, "installed": True, "files": [s.name for s in specs]})
    records, missing = [], []
    for spec in specs:
        path = archives / spec.name
        if path.is_file():
            source = "existing file"
        else:
            try:
                source = transfer_any(spec, path, options)
            except Missing as gap:
                missing.append(gap)
                continue
        record = {"name": spec.name, "size": path.stat().st_size, "source": source}
        write_json(markers_of(archives, root, spec.name).fetched, record)
        records.append(record)
    if missing:
        error = manual_error(name, entry, missing, lock)
        archives.mkdir(parents=True, exist_ok=True)  # ready for the user's files, with what they are
        (archives / MANUAL_NOTE).write_text(str(error) + "\n")
        raise error
    return write_json(fetched, {"dataset": name, "installed": False, "files": records})


def install_archives(
    name: str, entry: dict, archives: Path, root: Path, lock_path: Path, progress: bool = True
) -> Path:
    """The part that needs CPU and disk, not the internet (a compute job): verify each file
    in `archives` (published checksum, else the lock, else record its sha256 on first use),
    extract it into `root` (nested archives too), in catalogue order, and write
    `root/.verified` last. Files verified or installed by an earlier, interrupted run are
    not read again (archive.py's markers).

    A file that fails its checksum is moved aside as `<name>.bad` (a hand-placed one stays
    for the user to replace) and `archives/.fetched` is removed, so the next run fetches it
    again. A current `.verified` makes this a no-op."""
    archives, root = Path(archives), Path(root)
    specs = file_specs(name, entry)
    marker = root / VERIFIED_MARKER
    if marker_is_current(marker, specs):
        return root
    marker.unlink(missing_ok=True)
    records, installed = [], False
    for spec in specs:
        try:
            record = verify_archive(name, entry, spec.name, archives, root, lock_path, progress)
        except (ChecksumError, DownloadError):
            (archives / FETCHED_MARKER).unlink(missing_ok=True)
            raise
        installed |= install_step(name, entry, spec.name, archives, root, record, installed, progress)
        records.append(record)
    write_marker(marker, name, records)
    return root


def mark_installed(name: str, entry: dict, archives: Path, root: Path) -> Path:
    """Write `root/.verified` from the files' own markers once each is verified and installed
    (the workflow's last step of a dataset, after one `install_archive` job per file)."""
    archives, root = Path(archives), Path(root)
    records = []
    for spec in file_specs(name, entry):
        markers = markers_of(archives, root, spec.name)
        try:
            record = without_identity(json.loads(markers.verified.read_text()))
        except (OSError, ValueError):
            raise DownloadError(f"dataset {name!r}: {spec.name} is not verified ({markers.verified} missing)") from None
        if not is_extracted(markers.extracted, record):
            raise DownloadError(
                f"dataset {name!r}: {spec.name} is not installed from the verified bytes ({markers.extracted})"
            )
        records.append(record)
    marker = root / VERIFIED_MARKER
    write_marker(marker, name, records)
    return marker


# ---- one go: obtain each file verified ---------------------------------------------------


def _obtain(
    dataset: str, spec: FileSpec, archives: Path, root: Path, lock: ChecksumLock, options: Options
) -> dict[str, Any]:
    path = archives / spec.name
    markers = markers_of(archives, root, spec.name)
    current = verified_record(markers.verified, spec, path)
    if current is not None:
        return without_identity(current)
    expected, published = expected_for(dataset, spec, lock)
    digests = _existing(path, spec, expected, options)
    source = "existing file"
    if digests is None:
        digests, source = _download_any(spec, path, expected, options)
    record = record_of(dataset, spec, path, digests, expected, published, lock, source)
    stat = path.stat()
    write_json(markers.verified, {**record, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return record


def _existing(path: Path, spec: FileSpec, expected: Expected, options: Options) -> dict[str, str] | None:
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
            url=str(path),
            algorithm=algorithm,
            expected=want,
            actual=got,
            kept=path,
        )
    log.warning("%s does not match its checksum; kept as .bad and downloaded again", path)
    keep_aside(path)
    return None


def _download_any(spec: FileSpec, path: Path, expected: Expected, options: Options) -> tuple[dict[str, str], str]:
    """Try the URLs in catalogue order (official first, mirrors after)."""
    failures: list[DownloadError] = []
    for url in spec.urls:
        try:
            return fetch(url, path, expected, options), url
        except DownloadError as exc:
            log.warning("%s", exc)
            failures.append(exc)
    if spec.manual_from is not None or not spec.urls:
        raise Missing(spec, path, [str(f) for f in failures])
    raise _all_failed(spec, path, failures) from failures[-1]


def _all_failed(spec: FileSpec, path: Path, failures: list[DownloadError]) -> DownloadError:
    """One error listing every URL's failure; a ChecksumError when all were checksum
    failures, so callers can tell "wrong bytes" from "no bytes"."""
    lines = "\n".join(f"  - {f}" for f in failures)
    message = (
        f"{spec.name}: every URL failed:\n{lines}\nYou can also download it yourself and put it at {path.absolute()}"
    )
    last = failures[-1]
    if isinstance(last, ChecksumError) and all(isinstance(f, ChecksumError) for f in failures):
        return ChecksumError(
            message, url=last.url, algorithm=last.algorithm, expected=last.expected, actual=last.actual, kept=last.kept
        )
    return DownloadError(message)
