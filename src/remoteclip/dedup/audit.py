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


def source_audit(keys: list[str], rows: list[dict], leak_pairs: dict[str, np.ndarray]) -> dict:
    """{source: {images, kept, removed, duplicates_of: {source: n}, test_leaks: {benchmark:
    {images, test_images}}}}; `leak_pairs[benchmark]` holds one (training index, test index)
    row per close pair, training indices into `keys`, test indices into that benchmark's
    (distinct) test keys. Every source and every benchmark appears, zeros included."""
    index: dict[str, int] = {}  # one pass over millions of keys, no sort of strings
    codes = np.fromiter((index.setdefault(source_of(k), len(index)) for k in keys), np.int64, len(keys))
    sources = list(index)
    totals = np.bincount(codes, minlength=len(sources))
    removed = Counter(source_of(r["image"]) for r in rows)
    duplicates: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        if r["reason"] == DUPLICATE:
            duplicates[source_of(r["image"])][source_of(r["collides_with"])] += 1
    leaks = {bench: _leaks_per_source(codes, len(sources), pairs) for bench, pairs in sorted(leak_pairs.items())}
    return {
        s: {
            "images": int(totals[c]),
            "kept": int(totals[c]) - removed[s],
            "removed": removed[s],
            "duplicates_of": dict(sorted(duplicates[s].items())),
            "test_leaks": {bench: {"images": int(n[0][c]), "test_images": int(n[1][c])} for bench, n in leaks.items()},
        }
        for c, s in sorted(enumerate(sources), key=lambda cs: cs[1])
    }


def _leaks_per_source(codes: np.ndarray, n_sources: int, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per source code: distinct training images in a close pair, distinct test images they match
    (numpy throughout: a loose leak threshold gives millions of pairs)."""
    train, test = np.asarray(pairs, np.int64).reshape(-1, 2).T
    width = int(test.max(initial=0)) + 1
    images = np.unique(train)  # a training image belongs to one source
    source_and_test = np.unique(codes[train] * width + test)  # distinct (source, test image)
    return (
        np.bincount(codes[images], minlength=n_sources),
        np.bincount(source_and_test // width, minlength=n_sources),
    )
