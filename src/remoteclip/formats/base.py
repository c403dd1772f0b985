"""What every parser shares: the record types, the error type and the skip log.

A parser turns one dataset's on-disk annotations into `ImageRecord`s with horizontal
boxes in pixels and canonical class names. Bad input is either a `FormatError` naming
the file (and line), or, when the dataset is not strict, a counted skip in `SkipLog`
that ends up in the stage's summary. Nothing is dropped without a trace.

The records of a `parse` run become results/annotations/{dataset}.json (`annotations.to_coco`);
its skips go to results/annotations/{dataset}.report.json and from there into
results/captions/summary.json.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Any

from ..errors import FormatError  # noqa: F401 (re-exported: parsers raise it)

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Box:
    """Horizontal box [x, y, w, h] in pixels of the record's image (or crop)."""

    x: float
    y: float
    w: float
    h: float
    category: str
    difficult: bool = False

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


@dataclasses.dataclass
class ImageRecord:
    """One training image: a file (relative to the dataset root), optionally a crop of it."""

    file_name: str
    width: int
    height: int
    boxes: list[Box] = dataclasses.field(default_factory=list)
    split: str = "train"
    crop: tuple[int, int, int, int] | None = None  # x, y, w, h within the file
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> str:
        if self.crop is None:
            return self.file_name
        return "{}#{}_{}_{}_{}".format(self.file_name, *self.crop)


class SkipLog:
    """Counted skips of one stage: the file, the line and why, in order of discovery."""

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.entries: list[dict[str, Any]] = []

    def skip(self, error: FormatError, what: str = "record") -> None:
        """Record a skip, or raise the error when the dataset is strict."""
        if self.strict:
            raise error
        self.entries.append({"what": what, "file": error.path, "line": error.line, "reason": error.reason})
        log.warning("skipped %s: %s", what, error)

    def counts(self) -> dict[str, int]:
        return dict(collections.Counter(f"{e['what']}: {e['reason']}" for e in self.entries))

    def summary(self) -> dict[str, Any]:
        return {"total": len(self.entries), "by_reason": self.counts(), "entries": self.entries}
