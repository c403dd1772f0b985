"""Evaluation splits, written once per benchmark under results/splits/ so anyone can review
exactly which files were scored (and de-duplication protects exactly those: `scored`):

- CLS: per class, files sorted by name, first 80 % train, last 20 % test (the maintainers'
  protocol), with readable class names for prompts;
- RET: the Karpathy test split, captions capitalised and grouped per de-duplicated image
  (the official retrieval.py);
- COUNT: the RemoteCount reconstruction built from the dataset's labels.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ..config import DatasetSpec
from ..formats import FormatError, SkipLog, folders, get_caption_parser, get_parser, karpathy
from ..formats.common import image_index
from ..splits import filename_split
from .counting import COUNT_CLASSES, SQUARE_POLICIES, build_counting_set
from .retrieval import group_captions
from .zeroshot import readable_name


def classification_split(spec: DatasetSpec, train_fraction: float) -> dict[str, dict[str, list[str]]]:
    """{"train"/"test": {class folder: [paths relative to the class-tree root]}}."""
    opts = {**folders.DEFAULTS, **spec.options}
    return filename_split(folders.scan(spec.root / opts["path"], opts["depth"]), train_fraction)


def classification_set(spec: DatasetSpec, classes: dict[str, str] | None, train_fraction: float) -> dict[str, Any]:
    split = classification_split(spec, train_fraction)
    folders_sorted = sorted(split["train"])
    for cls in folders_sorted:
        if not split["test"][cls]:
            raise FormatError(spec.root, f"class {cls!r} has too few images for a test split")
    names = [(classes or {}).get(c) or readable_name(c) for c in folders_sorted]
    base = spec.root / {**folders.DEFAULTS, **spec.options}["path"]
    return {
        "benchmark": spec.name,
        "group": "CLS",
        "root": str(base),
        "rule": f"per class, sorted by file name, first {train_fraction:.0%} train, rest test",
        "classes": folders_sorted,
        "classnames": names,
        "train": [[f, i] for i, c in enumerate(folders_sorted) for f in split["train"][c]],
        "test": [[f, i] for i, c in enumerate(folders_sorted) for f in split["test"][c]],
    }


def retrieval_set(spec: DatasetSpec) -> dict[str, Any]:
    opts = {**karpathy.DEFAULTS, **spec.options, "splits": ["test"]}
    entries = (
        [e for e in karpathy.load(spec.root / opts["annotations"]) if e.get("split") == "test"]
        if spec.format == "karpathy"
        else _caption_entries(spec, opts)
    )
    if not entries:
        raise FormatError(spec.root, "the retrieval test split is empty")
    files, captions, caption_to_image = group_captions(entries)
    where = spec.root / opts["annotations"] if spec.format == "karpathy" else spec.root
    if len(files) > 1 and len(set(captions)) == 1:
        raise FormatError(
            where,
            f"every caption of the retrieval test split is the same string ({captions[0]!r}, "
            f"{len(captions)} captions of {len(files)} images): retrieval cannot tell the "
            "images apart",
        )
    images = image_index(spec.root, opts["images"])
    missing = [f for f in files if f not in images]
    if missing:
        raise FormatError(spec.root, f"{len(missing)} test images not found, e.g. {missing[0]}")
    return {
        "benchmark": spec.name,
        "group": "RET",
        "root": str(spec.root),
        "rule": "Karpathy test split; captions .capitalize()d and grouped per image (official retrieval.py)",
        "images": [str(images[f].relative_to(spec.root)) for f in files],
        "captions": captions,
        "caption_to_image": [int(i) for i in caption_to_image],
    }


def _caption_entries(spec: DatasetSpec, opts: dict) -> list[dict]:
    items = get_caption_parser(spec.format)(spec.root, opts, SkipLog())
    return [{"filename": Path(i["image"]).name, "sentences": [{"raw": c} for c in i["captions"]]} for i in items]


def counting_set(spec: DatasetSpec, settings: dict[str, Any]) -> dict[str, Any]:
    records = list(get_parser(spec.format)(spec.root, spec.options, SkipLog()))
    if not records:
        raise FormatError(
            spec.root,
            f"the counting set's labels parse to no image ({spec.format} format, options {spec.options or 'default'})",
        )
    classes = settings.get("classes") or COUNT_CLASSES
    square, tile = settings["square"], settings.get("tile")
    skips: Counter[str] = Counter()
    samples = build_counting_set(
        records,
        classes=classes,
        min_count=settings["min_count"],
        max_count=settings["max_count"],
        tile=tile,
        square=square,
        skips=skips,
    )
    if not samples:
        found = sorted({b.category for r in records for b in r.boxes})
        raise FormatError(
            spec.root,
            f"no counting sample: none of the {len(classes)} counting classes "
            f"({', '.join(classes)}) has {settings['min_count']}-{settings['max_count']} "
            f"objects inside any scored window ({square}"
            + (f", {tile} px tiles" if tile else "")
            + f") of the {len(records)} images; "
            f"skipped (window, class) pairs: {dict(skips) or 'none'}; "
            f"classes in the labels: {', '.join(found[:20]) or 'none'}",
        )
    windows = f"{tile} px tiles" if tile else "whole images"
    return {
        "benchmark": spec.name,
        "group": "COUNT",
        "root": str(spec.root),
        "rule": f"one sample per (window, class) with {settings['min_count']}-{settings['max_count']} objects; "
        f"windows: {windows}; scored square: {SQUARE_POLICIES[square]}",
        "square": square,
        "tile": tile,
        "skipped": dict(skips),
        "samples": samples,
    }


def build(
    spec: DatasetSpec, classes: dict[str, str] | None, train_fraction: float, counting: dict[str, Any]
) -> dict[str, Any]:
    if spec.group == "CLS":
        return classification_set(spec, classes, train_fraction)
    if spec.group == "RET":
        return retrieval_set(spec)
    if spec.group == "COUNT":
        return counting_set(spec, counting)
    raise ValueError(f"{spec.name}: group {spec.group} is not an evaluation benchmark")
