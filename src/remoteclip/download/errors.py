"""The errors of the download stage; every message names the URL or path and the reason.

Reads and writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class DownloadError(RuntimeError):
    """A file could not be downloaded; the message names the URL and the reason."""


class ChecksumError(DownloadError):
    """Downloaded or placed bytes do not match the expected digest."""

    def __init__(
        self, message: str, *, url: str, algorithm: str, expected: str, actual: str, kept: Path | None
    ) -> None:
        super().__init__(message)
        self.url, self.algorithm = url, algorithm
        self.expected, self.actual, self.kept = expected, actual, kept


class ManualDownloadRequired(DownloadError):
    """Some files must be fetched by hand; the message says from where and to which path."""

    def __init__(self, message: str, *, dataset: str, files: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.dataset, self.files = dataset, files
