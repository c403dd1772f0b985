"""Which training images a run removes, and why (rule `dedup`): test leaks and training
duplicates, the leakage audit (removed.tsv) and its summary."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np

from .audit import source_audit
from .search import duplicate_groups, pairs_across

HashSet = tuple[list[str], np.ndarray]  # keys and their hashes (uint64), in the same order


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def _source_of(key: str) -> str:
    return key.split(":", 1)[0]


def check_threshold(value: int, name: str, bits: int = 64) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= bits:
        raise ValueError(
            f"{name} must be an integer in [1, {bits}] (duplicate when the Hamming distance of "
            f"two {bits}-bit hashes is below it), got {value!r}"
        )


def keep_order(keys: list[str], source_order: list[str]) -> list[int]:
    """Positions of `keys` in keep order: the source listed first in the run, then the smallest
    key; a key listed twice is refused (it would be a duplicate of itself)."""
    rank = {source: i for i, source in enumerate(source_order)}
    missing = sorted({_source_of(k) for k in keys} - set(rank))
    if missing:
        raise ValueError(f"training keys of sources {missing} that the run does not list ({source_order})")
    order = sorted(range(len(keys)), key=lambda i: (rank[_source_of(keys[i])], keys[i]))
    for a, b in zip(order, order[1:]):
        if keys[a] == keys[b]:
            raise ValueError(f"training image {keys[a]!r} is listed twice in the hash files")
    return order


def deduplicate(
    train: dict[str, int],
    tests: dict[str, dict[str, int]],
    threshold: int,
    source_order: list[str],
    blocks: int | None = None,
    bits: int = 64,
    leak_threshold: int | None = None,
    workers: int = 1,
) -> tuple[list[dict], dict]:
    """`deduplicate_sets` for hashes held in dicts ({key: hash}, {benchmark: {key: hash}})."""

    def as_set(d: dict[str, int]) -> HashSet:
        return list(d), np.array(list(d.values()), dtype=np.uint64)

    return deduplicate_sets(
        as_set(train),
        {bench: as_set(test) for bench, test in tests.items()},
        threshold,
        source_order,
        blocks,
        bits,
        leak_threshold,
        workers,
    )


def deduplicate_sets(
    train: HashSet,
    tests: dict[str, HashSet],
    threshold: int,
    source_order: list[str],
    blocks: int | None = None,
    bits: int = 64,
    leak_threshold: int | None = None,
    workers: int = 1,
) -> tuple[list[dict], dict]:
    """Decide which training images to remove.

    `train` holds "source:image" keys and their hashes, `tests` the same per benchmark.
    Test leaks: every training image whose distance to a test image is below
    `leak_threshold` (None: `threshold`) is removed. Training duplicates: distance below
    `threshold`; each group of duplicates (connected through any chain of close pairs) keeps
    one image, the first that is not itself a test leak in the order source listed first in
    the run, then smallest key; the others are recorded as duplicates of the kept one.
    `blocks` fixes the number of hash substrings of the duplicate search (None: the cheapest);
    both searches run in `workers` threads.
    """
    leak_threshold = threshold if leak_threshold is None else leak_threshold
    check_threshold(threshold, "dedup threshold", bits)
    check_threshold(leak_threshold, "dedup leak threshold", bits)
    order = keep_order(train[0], source_order)
    keys = [train[0][i] for i in order]
    hashes = np.asarray(train[1], np.uint64)[order]
    removed, leak_pairs = _test_leaks(keys, hashes, tests, leak_threshold, bits, workers)

    group = duplicate_groups(hashes, threshold - 1, blocks, bits, workers)
    members = np.flatnonzero(np.bincount(group, minlength=len(keys))[group] > 1)
    kept: dict[int, int] = {}
    for i in members.tolist():  # in keep order, so the first non-leak member of a group is kept
        if i not in removed:
            kept.setdefault(int(group[i]), i)
    for i in members.tolist():
        keep = kept.get(int(group[i]))
        if keep is not None and keep != i and i not in removed:
            removed[i] = {
                "image": keys[i],
                "collides_with": keys[keep],
                "distance": int(hamming(hashes[keep : keep + 1], hashes[i : i + 1])[0]),
                "reason": "training duplicate",
            }

    rows = [removed[i] for i in sorted(removed, key=lambda i: keys[i])]
    summary = summarize(rows, keys)
    summary["audit"] = source_audit(keys, rows, leak_pairs)
    leaks = [r for r in rows if r["reason"].startswith("test leak")]
    summary["thresholds"] = {
        "training_duplicates": {"threshold": threshold, "removed": len(rows) - len(leaks)},
        "test_leaks": {
            "threshold": leak_threshold,
            "removed": len(leaks),
            "below_duplicate_threshold": sum(r["distance"] < threshold for r in leaks),
        },
    }
    return rows, summary


def _test_leaks(
    keys: list[str], hashes: np.ndarray, tests: dict[str, HashSet], leak_threshold: int, bits: int, workers: int
) -> tuple[dict[int, dict], dict[str, np.ndarray]]:
    """{train index: row} of training images close to a test image: the closest one recorded
    (ties: the benchmark first by name, then the smallest test key); and, for the audit, every
    close pair per benchmark: (train index, test index) rows."""
    best = np.full(len(keys), bits + 1, np.int64)
    where: dict[int, tuple[str, str]] = {}
    leak_pairs: dict[str, np.ndarray] = {}
    for bench, (test_keys, test_hashes) in sorted(tests.items()):
        by_key = sorted(range(len(test_keys)), key=test_keys.__getitem__)
        tkeys = [test_keys[k] for k in by_key]
        thashes = np.asarray(test_hashes, np.uint64)[by_key]
        pairs = pairs_across(hashes, thashes, leak_threshold - 1, None, bits, workers)
        leak_pairs[bench] = pairs
        if not len(pairs):
            continue
        i, j = pairs[:, 0], pairs[:, 1]
        d = hamming(hashes[i], thashes[j])
        first = np.lexsort((j, d, i))  # per training image: closest, then smallest test key
        i, j, d = i[first], j[first], d[first]
        head = np.concatenate([[True], i[1:] != i[:-1]])
        i, j, d = i[head], j[head], d[head]
        closer = d < best[i]
        for ii, jj in zip(i[closer].tolist(), j[closer].tolist()):
            where[ii] = (bench, tkeys[jj])
        best[i[closer]] = d[closer]
    rows = {
        i: {"image": keys[i], "collides_with": test_key, "distance": int(best[i]), "reason": f"test leak: {bench}"}
        for i, (bench, test_key) in where.items()
    }
    return rows, leak_pairs


def summarize(rows: list[dict], keys: list[str]) -> dict:
    pair_counts: Counter[tuple] = Counter()
    for r in rows:
        other = r["collides_with"].split(":", 1)[0]
        pair_counts[(_source_of(r["image"]), other, r["reason"])] += 1
    totals = Counter(_source_of(k) for k in keys)
    gone = Counter(_source_of(r["image"]) for r in rows)
    return {
        "images": len(keys),
        "removed": len(rows),
        "kept": len(keys) - len(rows),
        "per_source": {
            s: {"images": totals[s], "removed": gone[s], "kept": totals[s] - gone[s]} for s in sorted(totals)
        },
        "pairs": [
            {"source": a, "collides_with": b, "reason": why, "removed": n}
            for (a, b, why), n in sorted(pair_counts.items())
        ],
    }


def write_removed(path: str | Path, rows: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["image", "collides_with", "distance", "reason"])
        for r in rows:
            writer.writerow([r["image"], r["collides_with"], r["distance"], r["reason"]])


def read_removed(path: str | Path) -> set[str]:
    with open(path, newline="") as fh:
        return {row["image"] for row in csv.DictReader(fh, delimiter="\t")}
