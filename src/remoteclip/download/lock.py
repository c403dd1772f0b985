"""Trust on first use: sha256 digests of files that have no published checksum.

Contract: `ChecksumLock(path, section)` reads and writes one YAML file (users commit it)
of `{<section>: {group: {file: {sha256, size, source}}}}`; the section is `datasets`
(groups are datasets, this package) or `weights` (groups are weight sources,
`remoteclip.weights.fetch`). `record` never overwrites a different digest: that raises
`ChecksumError`, because the upstream file changed.

Parallel jobs serialise on `flock` of the lock file's folder rather than with `filelock`
(installed with huggingface_hub): filelock needs a `.lock` file beside it, which would be
one more file to commit or ignore.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import yaml

from .errors import ChecksumError, DownloadError

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
                    url=source,
                    algorithm="sha256",
                    expected=str(old.get("sha256")),
                    actual=sha256,
                    kept=None,
                )
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
