"""Parsers for the on-disk formats of the paper's sources, registered by name.

A new dataset in a known format is one catalogue entry; a new format is one module
here plus one line in `PARSERS` (box and mask formats, which yield `ImageRecord`s) or in
`CAPTION_PARSERS` (caption formats, which yield `{"image", "captions", "split"}`), its
DEFAULTS in `PARSER_OPTIONS`, and the options that locate its files in `LOCATORS`.

Stages: the `parse` rule runs a `PARSERS` entry on a DET or SEG dataset's raw folder and writes
its records to results/annotations/{dataset}.json (`convert.parse_dataset`); the `ret_captions`
rule runs a `CAPTION_PARSERS` entry on a RET or WEB dataset and writes results/captions/{dataset}.jsonl
(`convert.ret_dataset`). The benchmarks' evaluation splits (`eval_split`, results/splits/) and
test-split hashes (`hash_test_split`) are read through the same parsers (`class_folders` through
`folders.scan`). A new format's name goes into the `format` enum of
workflow/schemas/config.schema.yaml too (tests/formats/test_registry.py checks they agree).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import (
    auair,
    caption_table,
    carpk,
    coco,
    dota,
    folders,
    hf_tsv,
    hrsc,
    karpathy,
    levir,
    masks,
    parquet,
    sdd,
    visdrone,
    voc,
    webdataset,
)
from .base import Box, FormatError, ImageRecord, SkipLog

Parser = Callable[[Path, dict[str, Any], SkipLog], Iterator[ImageRecord]]
CaptionParser = Callable[[Path, dict[str, Any], SkipLog], Iterator[dict[str, Any]]]

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

# formats whose parse splits into independent units, each a job of its own in the workflow
# (rule `parse_unit`): `units(root, options)` names them in parse order, `parse_unit(root,
# options, unit, skips)` yields one unit's records; the format's parser is their concatenation
UNITS: dict[str, tuple[Callable[[Path, dict[str, Any]], list[str]], Callable[..., Iterator[ImageRecord]]]] = {
    "sdd": (sdd.units, sdd.parse_unit),
}

# captions as the source gives them, read by the caption stage: human captions of retrieval
# datasets (group RET) and web corpora (group WEB, images read in place from their containers)
CAPTION_PARSERS: dict[str, CaptionParser] = {
    "karpathy": karpathy.parse,
    "hf_tsv": hf_tsv.parse,
    "webdataset": webdataset.parse,
    "parquet": parquet.parse,
    "caption_table": caption_table.parse,
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
    "hf_tsv": hf_tsv.DEFAULTS,
    "webdataset": webdataset.DEFAULTS,
    "parquet": parquet.DEFAULTS,
    "caption_table": caption_table.DEFAULTS,
    "class_folders": folders.DEFAULTS,
}


# the options holding a format's file patterns (relative to the dataset root), the one its
# records come from first: an empty parse names them and what they matched (remoteclip.found)
LOCATORS: dict[str, tuple[str, ...]] = {
    "dota": ("labels", "images"),
    "voc": ("annotations", "images"),
    "coco": ("annotations", "images"),
    "rgb_mask": ("labels",),
    "index_mask": ("labels",),
    "visdrone": ("labels", "images"),
    "auair": ("annotations", "images"),
    "carpk": ("annotations", "images"),
    "sdd": ("annotations", "video"),
    "levir": ("labels", "images"),
    "hrsc": ("annotations", "images"),
    "karpathy": ("annotations", "images"),
    "hf_tsv": ("tables", "images"),
    "webdataset": ("tars",),
    "parquet": ("files",),
    "caption_table": ("tables", "images"),
    "class_folders": ("path",),
}


def get_parser(name: str) -> Parser:
    try:
        return PARSERS[name]
    except KeyError:
        raise KeyError(f"unknown annotation format {name!r}; known: {', '.join(sorted(PARSERS))}") from None


def get_caption_parser(name: str) -> CaptionParser:
    try:
        return CAPTION_PARSERS[name]
    except KeyError:
        raise KeyError(f"unknown caption format {name!r}; known: {', '.join(sorted(CAPTION_PARSERS))}") from None


__all__ = [
    "karpathy",
    "folders",
    "hf_tsv",
    "parquet",
    "webdataset",
    "caption_table",
    "Box",
    "FormatError",
    "ImageRecord",
    "SkipLog",
    "PARSERS",
    "UNITS",
    "CAPTION_PARSERS",
    "PARSER_OPTIONS",
    "LOCATORS",
    "get_parser",
    "get_caption_parser",
]
