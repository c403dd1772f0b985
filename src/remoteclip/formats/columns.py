"""Text box files whose column order is configuration (CARPK, LEVIR): one box per line,
whitespace-separated unless a separator is given.

Both formats are only known from third-party loaders, so the order of the columns is an
option: a wrong guess is fixed in the catalogue, not in code.

Column names: `class`, and either `xmin ymin xmax ymax` (corners) or `left top width
height`; `-` marks a column that is read but not used.

No stage of its own: the `parse` rule reaches it through carpk.py and levir.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .base import Box, FormatError
from .common import LineBox, clip_box, split_fields, to_numbers
from .labels import Labeler

CORNERS = ("xmin", "ymin", "xmax", "ymax")
SIZES = ("left", "top", "width", "height")
UNUSED = "-"


def check_columns(columns: Iterable[str]) -> list[str]:
    """The column list, or ValueError saying what is wrong with it."""
    columns = [str(c) for c in columns]
    named = [c for c in columns if c != UNUSED]
    unknown = set(named) - {"class", *CORNERS, *SIZES}
    if unknown:
        raise ValueError(
            f"unknown column names {sorted(unknown)}; use class, {', '.join(CORNERS)} or "
            f"{', '.join(SIZES)}, and {UNUSED!r} for unused columns"
        )
    if len(named) != len(set(named)):
        raise ValueError(f"columns {columns} name a column twice")
    if "class" not in named or not (set(CORNERS) <= set(named) or set(SIZES) <= set(named)):
        raise ValueError(f"columns {columns} need 'class' and either {list(CORNERS)} or {list(SIZES)}")
    if set(CORNERS) & set(named) and set(SIZES) & set(named):
        raise ValueError(f"columns {columns} mix corner and width/height columns")
    return columns


def class_table(classes: dict[Any, str] | None) -> dict[str, str] | None:
    """Class id token -> raw class name; None means the class column holds names."""
    if not classes:
        return None
    return {str(key).strip(): str(name) for key, name in classes.items()}


class BoxColumns:
    """Reads one line into (raw class name, x0, y0, x1, y1)."""

    def __init__(self, columns: Iterable[str], classes: dict[Any, str] | None, separator: str | None = None):
        self.columns = check_columns(columns)
        self.classes = class_table(classes)
        self.separator = separator

    def read(self, text: str, path: Path, line: int) -> tuple[str, float, float, float, float] | None:
        fields = split_fields(text, len(self.columns), path, line, self.separator)
        if fields is None:
            return None
        named = {c: f for c, f in zip(self.columns, fields) if c != UNUSED}
        raw = self.class_name(named["class"], path, line)
        if "xmin" in named:
            x0, y0, x1, y1 = to_numbers([named[c] for c in CORNERS], path, line)
        else:
            x0, y0, w, h = to_numbers([named[c] for c in SIZES], path, line)
            x1, y1 = x0 + w, y0 + h
        return raw, x0, y0, x1, y1

    def class_name(self, token: str, path: Path, line: int) -> str:
        if self.classes is None:
            return token
        if token in self.classes:
            return self.classes[token]
        # ids written as "1.0" still name class 1
        try:
            number = float(token)
        except ValueError:
            number = None
        if number is not None and number.is_integer() and str(int(number)) in self.classes:
            return self.classes[str(int(number))]
        known = ", ".join(f"{k} {v}" for k, v in self.classes.items())
        raise FormatError(path, f"class id {token!r} is not in the class table ({known})", line)

    def line_box(self, labeler: Labeler) -> LineBox:
        """A `LineBox` for `text_label_record`: clipped box with the canonical class."""

        def box(text: str, path: Path, line: int, width: int, height: int) -> Box | None:
            parsed = self.read(text, path, line)
            if parsed is None:
                return None
            raw, x0, y0, x1, y1 = parsed
            category = labeler(raw)
            if category is None:
                return None
            return clip_box(x0, y0, x1, y1, width, height, category, path, line)

        return box
