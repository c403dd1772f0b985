"""The images of every evaluation test split, for the leakage filter (and, later, the
evaluation stage): retrieval test splits, classification test splits (80/20 by file name
unless official lists are given), and counting sets."""

from __future__ import annotations

from pathlib import Path

from .config import DatasetSpec
from .formats import SkipLog, folders, get_caption_parser, get_parser
from .splits import filename_split

TestItem = tuple[str, str, tuple[int, int, int, int] | None]  # key, path, crop


def classification_split(spec: DatasetSpec, train_fraction: float) -> dict[str, dict[str, list[str]]]:
    """{"train"/"test": {class folder: [paths relative to the class-tree root]}}."""
    opts = {**folders.DEFAULTS, **spec.options}
    return filename_split(folders.scan(spec.root / opts["path"], opts["depth"]), train_fraction)


def test_items(spec: DatasetSpec, train_fraction: float = 0.8) -> list[TestItem]:
    """(key, image path, crop) of the dataset's evaluation test split."""
    if spec.group == "RET":
        opts = {**spec.options, "splits": ["test"]}
        return [(f"{spec.name}:{i['image']}", str(spec.root / i["image"]), None)
                for i in get_caption_parser(spec.format)(spec.root, opts, SkipLog())]
    if spec.group == "CLS":
        base = spec.root / {**folders.DEFAULTS, **spec.options}["path"]
        split = classification_split(spec, train_fraction)["test"]
        return [(f"{spec.name}:{f}", str(base / f), None) for files in split.values() for f in files]
    if spec.group == "COUNT":
        records = get_parser(spec.format)(spec.root, spec.options, SkipLog())
        return [(f"{spec.name}:{r.key}", str(Path(spec.root) / r.file_name), r.crop) for r in records]
    raise ValueError(f"{spec.name}: group {spec.group} has no evaluation test split")
