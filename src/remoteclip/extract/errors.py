"""The errors of the extraction stage; every message names the archive (and the member).

Reads and writes nothing. `download` catches `ExtractError` to leave a dataset unmarked."""

from __future__ import annotations


class ExtractError(RuntimeError):
    """An archive could not be extracted; the message names the archive."""


class UnsafeArchiveError(ExtractError):
    """A member would land outside the target (path traversal, absolute path, link)."""


class CorruptArchiveError(ExtractError):
    """The archive is truncated, corrupt or in a variant the reader does not support."""


class MissingToolError(ExtractError):
    """An external program the archive needs (unrar, bsdtar, ...) is not installed."""
