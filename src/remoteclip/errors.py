"""Errors shared across stages, outside any package that imports the stages."""

from __future__ import annotations

from pathlib import Path


class FormatError(ValueError):
    """A malformed input file; the message names the file and, where known, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path, self.line, self.reason = str(path), line, message
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
