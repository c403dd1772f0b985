"""Parsers for the on-disk formats of the paper's sources, registered by name.

A new dataset in a known format is one catalogue entry; a new format is one module
here plus one line in `PARSERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .base import Box, FormatError, ImageRecord, SkipLog
from . import auair, carpk, coco, dota, folders, hrsc, karpathy, levir, masks, sdd, visdrone, voc

Parser = Callable[[Path, dict[str, Any], SkipLog], Iterator[ImageRecord]]

PARSERS: dict[str, Parser] = {
    "dota": dota.parse,
    "voc": voc.parse,
    "coco": coco.parse,
    "rgb_mask": masks.parse_rgb,
    "index_mask": masks.parse_index,
    "visdrone": visdrone.parse,
    "auair": auair.parse,
    "carpk": carpk.parse,
    "sdd": sdd.parse,
    "levir": levir.parse,
    "hrsc": hrsc.parse,
}


# the options each parser understands, with their defaults (checked at config load)
PARSER_OPTIONS: dict[str, dict[str, Any]] = {
    "dota": dota.DEFAULTS,
    "voc": voc.DEFAULTS,
    "coco": coco.DEFAULTS,
    "rgb_mask": masks.RGB_DEFAULTS,
    "index_mask": masks.INDEX_DEFAULTS,
    "visdrone": visdrone.DEFAULTS,
    "auair": auair.DEFAULTS,
    "carpk": carpk.DEFAULTS,
    "sdd": sdd.DEFAULTS,
    "levir": levir.DEFAULTS,
    "hrsc": hrsc.DEFAULTS,
    "karpathy": karpathy.DEFAULTS,
    "class_folders": folders.DEFAULTS,
}


def get_parser(name: str) -> Parser:
    try:
        return PARSERS[name]
    except KeyError:
        raise KeyError(f"unknown annotation format {name!r}; known: {', '.join(sorted(PARSERS))}") from None


__all__ = ["karpathy", "folders", "Box", "FormatError", "ImageRecord", "SkipLog", "PARSERS", "get_parser"]
