"""What a split file (results/splits/<benchmark>.json, written by `sets`) says is scored: the
image regions, in the order the features rule embeds them, and their test part.

Both the features rule (`features.embed`) and de-duplication (rule `hash_test_split`) read the
regions here, so the images de-duplication protects are the images evaluation scores, by
construction. numpy only: the data stages (no torch) hash the test regions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Region = tuple[str, "list[int] | None", bool]  # image path, crop [x, y, w, h] or None, pad to a square


def _rows(split: dict[str, Any]) -> list[tuple[str, list[int] | None, bool, bool]]:
    """(image relative to the split's root, crop, pad, is a test image) per scored image."""
    if split["group"] == "CLS":
        return [(f, None, False, False) for f, _ in split["train"]] + [(f, None, False, True) for f, _ in split["test"]]
    if split["group"] == "RET":
        return [(f, None, False, True) for f in split["images"]]
    return [(s["image"], s.get("crop"), bool(s.get("pad")), True) for s in split["samples"]]


def scored_items(split: dict[str, Any], test_only: bool = False) -> tuple[list[Region], dict[str, np.ndarray]]:
    """The regions a benchmark scores, and the arrays that describe them; with `test_only`, a
    classification benchmark's test part alone (all that zero-shot reads)."""
    rows = _rows(split)
    if split["group"] == "CLS":
        labelled = split["train"] + split["test"]
        keep = [i for i, row in enumerate(rows) if row[3] or not test_only]
        return [(f"{split['root']}/{rows[i][0]}", rows[i][1], rows[i][2]) for i in keep], {
            "files": np.array([labelled[i][0] for i in keep]),
            "labels": np.array([labelled[i][1] for i in keep]),
            "is_test": np.array([rows[i][3] for i in keep], bool),
        }
    items = [(f"{split['root']}/{image}", crop, pad) for image, crop, pad, _ in rows]
    if split["group"] == "RET":
        return items, {"files": np.array(split["images"])}
    samples = split["samples"]
    return items, {
        "files": np.array([s["image"] for s in samples]),
        "counts": np.array([s["count"] for s in samples]),
        "categories": np.array([s["category"] for s in samples]),
    }


def protected_regions(split: dict[str, Any]) -> list[tuple[str, str, tuple[int, int, int, int] | None]]:
    """(key, image path, crop) of every distinct test region: what de-duplication hashes.

    CLS: the test part; RET: every image; COUNT: every sample's region, once however many
    classes are counted in it. The key is "<benchmark>:<image>" plus "#x_y_w_h" for a crop (as
    `shards.sample_key` names tiles). `pad` is left out: it only adds black borders around the
    crop, and a copy of the region in a training set has none, so the crop alone is hashed.
    """
    regions: dict[str, tuple] = {}
    for image, crop, _, is_test in _rows(split):
        if is_test:
            key = f"{split['benchmark']}:{image}" + ("#{}_{}_{}_{}".format(*crop) if crop else "")
            regions.setdefault(key, (key, f"{split['root']}/{image}", tuple(crop) if crop else None))
    return list(regions.values())
