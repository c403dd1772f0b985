"""Files that must be downloaded by hand: the message that says from where and to which path.

Contract: `Missing` marks one file with no URL, or whose URLs all failed where the
catalogue names a manual source; `manual_error` turns the missing files of a dataset into
one `ManualDownloadRequired` listing, per file, where to get it, the exact path to put it
at, its expected digests and why the automatic download failed. Reads the catalogue entry
and the lock; writes nothing (dataset.py writes the message to `MANUAL_NOTE`).
"""

from __future__ import annotations

from pathlib import Path

from .errors import ManualDownloadRequired
from .lock import ChecksumLock
from .specs import FileSpec, expected_for

MANUAL_NOTE = "WHAT-TO-PUT-HERE.txt"  # the manual steps, beside where the files go


class Missing(Exception):
    """A file that has to be placed by hand (no URL, or every URL failed)."""

    def __init__(self, spec: FileSpec, path: Path, failures: list[str]):
        super().__init__(spec.name)
        self.spec, self.path, self.failures = spec, path, failures


def manual_error(dataset: str, entry: dict, missing: list[Missing], lock: ChecksumLock) -> ManualDownloadRequired:
    manual = entry.get("manual") or {}
    lines = [f"Dataset {dataset!r} needs files that must be downloaded by hand."]
    if manual.get("instructions"):
        lines += ["", str(manual["instructions"]).strip()]
    lines += ["", "Put each file at exactly this path, then run the workflow again:"]
    for gap in missing:
        lines += _manual_lines(gap, dataset, lock)
    files = [{"name": g.spec.name, "from": g.spec.manual_from, "path": str(g.path)} for g in missing]
    return ManualDownloadRequired("\n".join(lines), dataset=dataset, files=files)


def _manual_lines(gap: Missing, dataset: str, lock: ChecksumLock) -> list[str]:
    spec = gap.spec
    lines = [
        f"  - {spec.name}",
        f"      get it from: {spec.manual_from or '(see the instructions)'}",
        f"      put it at:   {gap.path.absolute()}",
    ]
    expected, _ = expected_for(dataset, spec, lock)
    for algorithm, value in expected.digests.items():
        lines.append(f"      expected {algorithm}: {value}")
    if not expected.digests:
        lines.append(f"      (no published checksum: its sha256 will be recorded in {lock.path})")
    lines += [f"      automatic download failed: {f}" for f in gap.failures]
    return lines
