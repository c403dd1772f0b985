"""Reading one JSON object of large arrays (a COCO file) item by item, in bounded memory.

`top_level_items(path, key)` yields the elements of the array that the top-level object holds
under `key`; `top_level_values(path, keys)` returns the other top-level values asked for. Each
element is decoded by the standard library's `json.JSONDecoder.raw_decode` from a text buffer
of about a megabyte that slides along the file, so memory follows the largest element, not the
file. Any JSON layout (whitespace, key order) is read.

Written by hand because the library that does this, ijson, is not a dependency of the project;
what is ours is only the walk over the outer object and its arrays, the values themselves are
the standard decoder's.

Read by B2C (`remoteclip.annotations.iter_records`) on results/annotations/{dataset}.json;
writes nothing.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TextIO

from .errors import FormatError

CHUNK_CHARS = 1 << 20
TAIL_BYTES = 1 << 20
_WHITESPACE = " \t\n\r"
_SKIP_WHITESPACE = re.compile(r"[ \t\n\r]*")
_SEPARATOR = re.compile(r"[ \t\n\r]*([,\]])")


class _Text:
    """A window on the file's text: the decoder reads from `text` at `pos`; more is read on demand."""

    def __init__(self, path: Path, fh: TextIO, chunk: int = CHUNK_CHARS):
        self.path, self.fh, self.chunk = path, fh, chunk
        self.text, self.pos, self.eof = "", 0, False
        self.decoder = json.JSONDecoder()

    def _more(self, at_least: int) -> bool:
        """Append at least `at_least` characters (fewer at the end of the file); False at the end."""
        if self.eof:
            return False
        data = self.fh.read(max(self.chunk, at_least))
        if not data:
            self.eof = True
            return False
        self.text = self.text[self.pos :] + data
        self.pos = 0
        return True

    def char(self) -> str:
        """The next character that is not whitespace, consumed; "" at the end of the file."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.text):
                self.pos += 1
                return self.text[self.pos - 1]
            if not self._more(self.chunk):
                return ""

    def peek(self) -> str:
        c = self.char()
        if c:
            self.pos -= 1
        return c

    def expect(self, wanted: str) -> None:
        c = self.char()
        if c != wanted:
            self.fail(f"expected {wanted!r}, found {c or 'the end of the file'!r}")

    def value(self) -> Any:
        """The next JSON value. A value that reaches the end of the window is decoded again once
        more text is in (a number cut at the window's edge would decode short)."""
        self.peek()  # skips whitespace
        want = self.chunk
        while True:
            try:
                value, end = self.decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                if self._more(want):
                    want *= 2  # a value longer than the window: read in larger steps
                    continue
                self.fail(f"not valid JSON ({exc.msg})")
            if end < len(self.text) or not self._more(want):
                self.pos = end
                return value

    def elements(self, key: str) -> Iterator[Any]:
        """The elements of the array whose '[' was just read, up to its ']'. The common case (an
        element inside the window, then ',' or ']') takes one decoder call and one regex match;
        the edge of the window goes through `value` and `char`."""
        if self.peek() == "]":
            self.pos += 1
            return
        decode = self.decoder.raw_decode
        while True:
            text = self.text
            start = _SKIP_WHITESPACE.match(text, self.pos).end()  # type: ignore[union-attr]
            try:
                value, end = decode(text, start)
                whole = end < len(text)
            except json.JSONDecodeError:
                whole = False
            if whole:
                self.pos = end
            else:
                self.pos = start
                value = self.value()
            yield value
            separator = _SEPARATOR.match(self.text, self.pos)
            if separator is not None:
                self.pos = separator.end()
                c = separator.group(1)
            else:
                c = self.char()
            if c == "]":
                return
            if c != ",":
                self.fail(f"expected ',' or ']' in the {key!r} array")

    def fail(self, message: str) -> NoReturn:
        raise FormatError(self.path, f"{message} near character {self.pos} of the current window")


def _walk(path: Path, fh: TextIO) -> Iterator[tuple[str, str, Any]]:
    """In file order: (key, "array", None) where a top-level array starts, (key, "item",
    element) for each of its elements, (key, "value", value) for any other top-level value."""
    text = _Text(path, fh)
    text.expect("{")
    if text.peek() == "}":
        return
    while True:
        key = text.value()
        if not isinstance(key, str):
            text.fail("expected a key")
        text.expect(":")
        if text.peek() == "[":
            text.expect("[")
            yield key, "array", None
            for element in text.elements(key):
                yield key, "item", element
        else:
            yield key, "value", text.value()
        c = text.char()
        if c == "}":
            return
        if c != ",":
            text.fail("expected ',' or '}' between top-level keys")


def top_level_items(path: str | Path, key: str) -> Iterator[Any]:
    """The elements of the top-level array `key`, one at a time; nothing when there is none."""
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        seen = False
        for name, event, value in _walk(path, fh):
            if name == key and event == "item":
                seen = True
                yield value
            elif seen:
                return  # keys are unique: the array is over


def top_level_values(path: str | Path, keys: Iterable[str]) -> dict[str, Any]:
    """{key: value} of the asked top-level keys (arrays as lists), reading the file once and
    keeping only those: for small arrays such as COCO's `categories`."""
    path, wanted = Path(path), set(keys)
    found: dict[str, Any] = {}
    with open(path, encoding="utf-8") as fh:
        for name, event, value in _walk(path, fh):
            if name not in wanted:
                continue
            if event == "array":
                found[name] = []
            elif event == "item":
                found[name].append(value)
            else:
                found[name] = value
    return found


def last_value(path: str | Path, key: str, tail: int = TAIL_BYTES) -> Any:
    """The value of `key` when it is the last key of the top-level object and lies in the file's
    last `tail` bytes (COCO's `categories` as the parse stage writes them), without reading the
    rest; LookupError otherwise, so the caller can read the whole file instead.

    A `"key":` found in the raw bytes is a key, never text inside a string (a quote inside a
    string is escaped); that it is the outer object's last one is checked: only its closing
    brace may follow the value."""
    path = Path(path)
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - tail))
        data = fh.read()
    matches = list(re.finditer(rb'"' + re.escape(key.encode()) + rb'"[ \t\n\r]*:', data))
    if not matches:
        raise LookupError(f"{path}: {key!r} is not among the last {tail} bytes")
    rest = data[matches[-1].end() :].decode("utf-8")
    start = _SKIP_WHITESPACE.match(rest).end()  # type: ignore[union-attr]
    try:
        value, end = json.JSONDecoder().raw_decode(rest, start)
    except json.JSONDecodeError as exc:
        raise LookupError(f"{path}: the value of {key!r} at the end does not decode ({exc.msg})") from None
    if rest[end:].strip() != "}":
        raise LookupError(f"{path}: {key!r} near the end is not the last key of the top-level object")
    return value
