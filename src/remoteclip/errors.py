"""Errors shared across stages, outside any package that imports the stages."""

from __future__ import annotations

from pathlib import Path


class FormatError(ValueError):
    """A malformed input file; the message names the file and, where known, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path, self.line, self.reason = str(path), line, message
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


class DataNotFoundError(FormatError):
    """A stage found no input, or far fewer images than the dataset is stated to have.

    The path is the dataset root; the message names the patterns tried, what lies under the
    root and the option to set (remoteclip.found builds it)."""
