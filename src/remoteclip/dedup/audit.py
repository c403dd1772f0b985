"""The per-source audit of a run's de-duplication (summary.json's `audit`): for each training
source, how many of its images the run removed as duplicates of another source (and of which
source), and how many of its images match each benchmark's test split.

Contract: `source_audit(keys, rows, leak_pairs)` reads the run's training keys ("source:image"),
the removed rows (`removal.deduplicate_sets`) and every (training image, test image) pair
closer than the leak threshold, per benchmark; returns {source: counts}. Writes nothing.

Why its own count of leaks: removed.tsv names one benchmark per removed image (the closest),
so an image that is in two benchmarks' test splits shows under one of them only. The audit
counts every benchmark an image matches, and the distinct test images each source holds,
which is what a corpus's "how many benchmark test images does it contain" means.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

DUPLICATE = "training duplicate"


def source_of(key: str) -> str:
    return key.split(":", 1)[0]


def source_audit(keys: list[str], rows: list[dict], leak_pairs: dict[str, tuple[np.ndarray, list[str]]]) -> dict:
    """{source: {images, kept, removed, duplicates_of: {source: n}, test_leaks: {benchmark:
    {images, test_images}}}}; `leak_pairs[benchmark]` = (training index per pair, test key per
    pair), indices into `keys`. Every source and every benchmark appears, zeros included."""
    sources = sorted({source_of(k) for k in keys})
    totals = Counter(source_of(k) for k in keys)
    removed = Counter(source_of(r["image"]) for r in rows)
    duplicates: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        if r["reason"] == DUPLICATE:
            duplicates[source_of(r["image"])][source_of(r["collides_with"])] += 1
    leaks = {bench: _leaks_per_source(keys, *pairs) for bench, pairs in sorted(leak_pairs.items())}
    return {
        s: {
            "images": totals[s],
            "kept": totals[s] - removed[s],
            "removed": removed[s],
            "duplicates_of": dict(sorted(duplicates[s].items())),
            "test_leaks": {
                bench: per_source.get(s, {"images": 0, "test_images": 0}) for bench, per_source in leaks.items()
            },
        }
        for s in sources
    }


def _leaks_per_source(keys: list[str], train_index: np.ndarray, test_keys: list[str]) -> dict[str, dict[str, int]]:
    images: dict[str, set[int]] = defaultdict(set)
    tests: dict[str, set[str]] = defaultdict(set)
    for i, t in zip(np.asarray(train_index).tolist(), test_keys):
        s = source_of(keys[i])
        images[s].add(i)
        tests[s].add(t)
    return {s: {"images": len(images[s]), "test_images": len(tests[s])} for s in images}
