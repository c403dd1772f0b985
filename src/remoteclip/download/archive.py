"""One file of a catalogue entry at a time: fetched, verified, installed, each step with a
marker of its own, so a dataset of many archives resumes where it stopped.

Markers (`markers_of` is the one place that knows where they lie):
- `<archives>/<file>.fetched`: the transfer finished (or the file was placed by hand);
- `<archives>/<file>.verified`: its checksums passed; the `.verified` record of the file (digests,
  how it was verified, layout) plus the file's size and modification time, so a replaced file
  is verified again;
- `<root>/.extracted/<file>`: it is extracted (or copied) into the dataset folder; holds the
  digests and layout it was extracted from.

Archives are installed in catalogue order and an archive's install is only current while
every archive before it is: a later archive may replace files of an earlier one, so once one
is installed again, every later one is too (the workflow's `install_archive` jobs form the same
chain). A run killed in the middle of an archive redoes that archive only.

Contract: `fetch_archive` (internet; the login node's job) writes the file and `.fetched`;
`verify_archive` reads the file and the lock, writes `.verified` (a file that fails is kept
aside as `.bad`, or left in place when placed by hand, and its `.fetched` removed, so the next
run fetches it again); `install_archive` reads the file, writes its members under the root
and `.extracted/<file>` last.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checksums import Expected, file_digests
from .errors import ChecksumError, DownloadError
from .fetch import transfer
from .files import Options, keep_aside, part_path, write_json
from .install import VERIFIED_MARKER, install, marker_is_current, record_matches
from .lock import ChecksumLock
from .manual import MANUAL_NOTE, Missing, manual_error
from .specs import FileSpec, expected_for, file_specs

log = logging.getLogger(__name__)

EXTRACTED_DIR = ".extracted"
FETCHED_SUFFIX = ".fetched"
VERIFIED_SUFFIX = ".verified"


@dataclass(frozen=True)
class Markers:
    """Where one file's markers are."""

    fetched: Path
    verified: Path
    extracted: Path


def markers_of(archives: Path, root: Path, file: str) -> Markers:
    archives, root = Path(archives), Path(root)
    return Markers(
        fetched=archives / f"{file}{FETCHED_SUFFIX}",
        verified=archives / f"{file}{VERIFIED_SUFFIX}",
        extracted=root / EXTRACTED_DIR / file,
    )


def spec_named(dataset: str, entry: dict, file: str) -> FileSpec:
    for spec in file_specs(dataset, entry):
        if spec.name == file:
            return spec
    raise ValueError(f"dataset {dataset!r}: the catalogue entry has no file {file!r}")


# ---- fetched -------------------------------------------------------------------------------


def fetch_archive(
    dataset: str, entry: dict, file: str, archives: Path, root: Path, lock_path: Path, options: Options
) -> Path:
    """Transfer one file into `archives` unless it is there (fetched earlier or placed by hand),
    without verifying it (verify_archive does); writes and returns its `.fetched` marker. A file
    that must be placed by hand and is not raises `ManualDownloadRequired` naming every such
    file of the dataset, so one message says all there is to do."""
    archives, root = Path(archives), Path(root)
    spec = spec_named(dataset, entry, file)
    marker = markers_of(archives, root, file).fetched
    path = archives / file
    if marker_is_current(root / VERIFIED_MARKER, file_specs(dataset, entry)):
        return write_json(marker, {"name": file, "installed": True})
    if path.is_file():
        return write_json(marker, {"name": file, "size": path.stat().st_size, "source": "existing file"})
    try:
        source = transfer_any(spec, path, options)
    except Missing:
        raise _all_manual_missing(dataset, entry, archives, ChecksumLock(lock_path)) from None
    return write_json(marker, {"name": file, "size": path.stat().st_size, "source": source})


def _all_manual_missing(dataset: str, entry: dict, archives: Path, lock: ChecksumLock) -> Exception:
    """The manual-download message for every file of the dataset that has to be placed by hand
    and is not there yet."""
    missing = [
        Missing(spec, archives / spec.name, [])
        for spec in file_specs(dataset, entry)
        if (spec.manual_from is not None or not spec.urls) and not (archives / spec.name).is_file()
    ]
    error = manual_error(dataset, entry, missing, lock)
    archives.mkdir(parents=True, exist_ok=True)  # ready for the user's files, with what they are
    (archives / MANUAL_NOTE).write_text(str(error) + "\n")
    return error


# ---- verified ------------------------------------------------------------------------------


def installed_record(dataset: str, entry: dict, file: str, root: Path) -> dict[str, Any] | None:
    """The file's record in the dataset's `.verified` while that marker is current: a dataset
    installed before each file had markers of its own is taken as it is, not verified and
    unpacked again."""
    marker = Path(root) / VERIFIED_MARKER
    if not marker_is_current(marker, file_specs(dataset, entry)):
        return None
    return next((r for r in json.loads(marker.read_text())["files"] if r.get("name") == file), None)


def verified_record(marker: Path, spec: FileSpec, path: Path) -> dict[str, Any] | None:
    """The record in a `.verified` marker when it still describes the file: same catalogue
    layout and published checksums, same size and modification time; else None."""
    try:
        record = json.loads(marker.read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not record_matches(record, spec):
        return None
    if (record.get("size"), record.get("mtime_ns")) != (stat.st_size, stat.st_mtime_ns):
        return None
    return record


def verify_archive(
    dataset: str, entry: dict, file: str, archives: Path, root: Path, lock_path: Path, progress: bool = True
) -> dict[str, Any]:
    """The file's `.verified` record: from a current marker, else by checking its digests
    (published, else the lock's, else recorded on first use) and writing the marker."""
    archives = Path(archives)
    spec = spec_named(dataset, entry, file)
    markers = markers_of(archives, root, file)
    path = archives / file
    current = verified_record(markers.verified, spec, path)
    if current is not None:
        log.info("%s/%s: verified before (%s), not read again", dataset, file, markers.verified.name)
        return without_identity(current)
    installed = installed_record(dataset, entry, file, root)
    if installed is not None:
        log.info("%s/%s: installed before the files had markers of their own (%s)", dataset, file, VERIFIED_MARKER)
        write_json(markers.verified, installed)
        return installed
    markers.verified.unlink(missing_ok=True)
    if not path.is_file():
        markers.fetched.unlink(missing_ok=True)
        raise DownloadError(
            f"dataset {dataset!r}: {path} is missing; fetch it first (the fetch_archive rule, on a machine with internet)"
        )
    try:
        record = checked_record(dataset, spec, path, ChecksumLock(lock_path), Options(progress=progress))
    except ChecksumError:
        markers.fetched.unlink(missing_ok=True)
        raise
    stat = path.stat()
    write_json(markers.verified, {**record, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return record


def without_identity(record: dict[str, Any]) -> dict[str, Any]:
    """A `.verified` marker's record as the dataset's `.verified` lists it (no modification time)."""
    return {k: v for k, v in record.items() if k != "mtime_ns"}


# ---- extracted -----------------------------------------------------------------------------


def extracted_content(record: dict[str, Any]) -> dict[str, Any]:
    """What an `.extracted` marker holds: what was extracted, from which bytes, in which layout."""
    keys = ("name", "md5", "sha256", "subdir", "extract", "nested")
    return {k: record.get(k) for k in keys}


def is_extracted(marker: Path, record: dict[str, Any]) -> bool:
    try:
        return json.loads(marker.read_text()) == extracted_content(record)
    except (OSError, ValueError):
        return False


def install_archive(
    dataset: str, entry: dict, file: str, archives: Path, root: Path, record: dict[str, Any], progress: bool = True
) -> None:
    """Extract (or copy) one verified file into `root`, then write its `.extracted` marker. The
    marker is removed first: a run killed half-way leaves none, and the archive is redone."""
    spec = spec_named(dataset, entry, file)
    marker = markers_of(archives, root, file).extracted
    if installed_record(dataset, entry, file, root) == record:
        log.info("%s/%s: installed before the files had markers of their own; not extracted again", dataset, file)
    else:
        marker.unlink(missing_ok=True)
        log.info("%s/%s: installing into %s", dataset, file, root)
        install(spec, Path(archives) / file, Path(root), progress)
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps(extracted_content(record), sort_keys=True) + "\n")
    os.replace(tmp, marker)


def install_step(
    dataset: str,
    entry: dict,
    file: str,
    archives: Path,
    root: Path,
    record: dict[str, Any],
    earlier_installed: bool,
    progress: bool = True,
) -> bool:
    """One step of installing the files in catalogue order: install `file` unless it is
    installed from the same bytes and no earlier file was installed in this run (which may
    have replaced its files). True when it installed."""
    marker = markers_of(archives, root, file).extracted
    if not earlier_installed and is_extracted(marker, record):
        log.info("%s/%s: installed before (%s), not extracted again", dataset, file, marker)
        return False
    install_archive(dataset, entry, file, archives, root, record, progress)
    return True


# ---- shared with the one-go download (dataset.py) -------------------------------------------


def transfer_any(spec: FileSpec, path: Path, options: Options) -> str:
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


def checked_record(dataset: str, spec: FileSpec, path: Path, lock: ChecksumLock, options: Options) -> dict[str, Any]:
    """The `.verified` record of a file on disk, from its digests; ChecksumError when they are
    wrong (the file kept aside as `.bad`, or left in place when it was placed by hand)."""
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
    return record_of(dataset, spec, path, digests, expected, published, lock, "fetched file")


def record_of(
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
