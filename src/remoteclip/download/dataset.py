"""Dataset level: every file of a catalogue entry, fetched, verified and installed.

Contract, in one go (`fetch_dataset`): reads the entry's URLs (or files placed by hand
in the archives folder, default `<root>/.archives`), writes the archives there, the
dataset under `<root>`, first-use digests into the lock file, and `<root>/.verified`
last, so the marker exists only when everything succeeded. On a cluster the same happens
in two steps: `fetch_archives` (only the transfer, on a login node with internet; writes
`<archives>/.fetched`) then `install_archives` (checksums and extraction, a compute job;
writes `<root>/.verified`). Files that must be fetched by hand raise
`ManualDownloadRequired` with their exact paths.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from .checksums import Expected, file_digests
from .errors import ChecksumError, DownloadError
from .fetch import fetch, transfer
from .files import Options, keep_aside, part_path, write_json
from .install import VERIFIED_MARKER, install, marker_is_current, write_marker
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
            records.append(_obtain(name, spec, archives, lock, options))
        except Missing as gap:
            missing.append(gap)
    if missing:
        archives.mkdir(parents=True, exist_ok=True)  # ready for the user's files
        raise manual_error(name, entry, missing, lock)
    for spec in specs:
        install(spec, archives / spec.name, root, progress)
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
    Writes and returns `archives/.fetched`. Nothing is fetched when `root` is already
    installed from the same files (current `.verified`)."""
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
            records.append({"name": spec.name, "size": path.stat().st_size, "source": "existing file"})
            continue
        try:
            source = _transfer_any(spec, path, options)
        except Missing as gap:
            missing.append(gap)
            continue
        records.append({"name": spec.name, "size": path.stat().st_size, "source": source})
    if missing:
        error = manual_error(name, entry, missing, lock)
        archives.mkdir(parents=True, exist_ok=True)  # ready for the user's files, with what they are
        (archives / MANUAL_NOTE).write_text(str(error) + "\n")
        raise error
    return write_json(fetched, {"dataset": name, "installed": False, "files": records})


def install_archives(
    name: str, entry: dict, archives: Path, root: Path, lock_path: Path, progress: bool = True
) -> Path:
    """The part that needs CPU and disk, not the internet (a compute job): verify every file
    in `archives` (published checksum, else the lock, else record its sha256 on first use),
    extract into `root` (nested archives too) and write `root/.verified` last.

    A file that fails its checksum is moved aside as `<name>.bad` (a hand-placed one stays
    for the user to replace) and `archives/.fetched` is removed, so the next run fetches it
    again. A current `.verified` makes this a no-op."""
    archives, root, lock = Path(archives), Path(root), ChecksumLock(lock_path)
    specs = file_specs(name, entry)
    marker = root / VERIFIED_MARKER
    if marker_is_current(marker, specs):
        return root
    marker.unlink(missing_ok=True)
    options = Options(progress=progress)
    records = []
    for spec in specs:
        path = archives / spec.name
        if not path.is_file():
            (archives / FETCHED_MARKER).unlink(missing_ok=True)
            raise DownloadError(
                f"dataset {name!r}: {path} is missing; fetch it first (the fetch_dataset rule, "
                "on a machine with internet)"
            )
        try:
            records.append(_verified_record(name, spec, path, lock, options))
        except ChecksumError:
            (archives / FETCHED_MARKER).unlink(missing_ok=True)
            raise
    for spec in specs:
        install(spec, archives / spec.name, root, progress)
    write_marker(marker, name, records)
    return root


# ---- one go: obtain each file verified ---------------------------------------------------


def _obtain(dataset: str, spec: FileSpec, archives: Path, lock: ChecksumLock, options: Options) -> dict[str, Any]:
    path = archives / spec.name
    expected, published = expected_for(dataset, spec, lock)
    digests = _existing(path, spec, expected, options)
    source = "existing file"
    if digests is None:
        digests, source = _download_any(spec, path, expected, options)
    return _record(dataset, spec, path, digests, expected, published, lock, source)


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


# ---- two steps: transfer without checking, then verify ------------------------------------


def _transfer_any(spec: FileSpec, path: Path, options: Options) -> str:
    """Transfer the file from the first URL that works (no verification); returns the URL."""
    failures: list[str] = []
    path.parent.mkdir(parents=True, exist_ok=True)
    for url in spec.urls:
        try:
            transfer(url, part_path(path), options)
        except DownloadError as exc:
            log.warning("%s", exc)
            failures.append(str(exc))
            continue
        os.replace(part_path(path), path)
        return url
    if spec.manual_from is not None or not spec.urls:
        raise Missing(spec, path, failures)
    lines = "\n".join(f"  - {f}" for f in failures)
    raise DownloadError(
        f"{spec.name}: every URL failed:\n{lines}\nYou can also download it yourself and put it at {path.absolute()}"
    )


def _verified_record(dataset: str, spec: FileSpec, path: Path, lock: ChecksumLock, options: Options) -> dict[str, Any]:
    expected, published = expected_for(dataset, spec, lock)
    digests = file_digests(path, options.progress)
    bad = expected.mismatch(digests)
    if bad is not None:
        algorithm, want, got = bad
        kept = path if not spec.urls else keep_aside(path)
        raise ChecksumError(
            f"{path}: {algorithm} {got}, but {want} is expected ({expected.origin}); "
            + (
                "replace it with the right file"
                if not spec.urls
                else f"kept aside at {kept}; the next run downloads it again"
            ),
            url=str(path),
            algorithm=algorithm,
            expected=want,
            actual=got,
            kept=kept,
        )
    return _record(dataset, spec, path, digests, expected, published, lock, "fetched file")


# ---- both: the marker's record of one verified file ---------------------------------------


def _record(
    dataset: str,
    spec: FileSpec,
    path: Path,
    digests: dict[str, str],
    expected: Expected,
    published: bool,
    lock: ChecksumLock,
    source: str,
) -> dict[str, Any]:
    """The `.verified` entry of a file that passed; a file with nothing to check against
    has its sha256 recorded in the lock first (trust on first use)."""
    if not published and not expected.digests:
        lock.record(dataset, spec.name, digests["sha256"], path.stat().st_size, source)
        log.info(
            "%s/%s: no published checksum; recorded sha256 %s in %s", dataset, spec.name, digests["sha256"], lock.path
        )
    verified_by = next(iter(expected.digests)) if published else "lock" if expected.digests else "recorded on first use"
    return {
        "name": spec.name,
        "size": path.stat().st_size,
        **digests,
        "verified_by": verified_by,
        "subdir": spec.subdir,
        "extract": spec.extract,
        "nested": list(spec.nested),
    }
