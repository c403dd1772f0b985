"""pHash de-duplication inside a run's training set and against evaluation test splits
(paper §III-B-3: 64-bit p-Hash, "blockwise local detection", duplicate when the Hamming
distance is below 2).

Test leaks have a threshold of their own, `dedup.leak_threshold` (default 10): the paper's 2
means an identical hash and lets rescaled or re-encoded copies through (README, "De-duplication").

Candidate search (sub-quadratic, exact): to find every pair at distance <= d, split each
hash into b >= d + 1 blocks. Two hashes that differ in at most d bits leave at least one
block untouched (pigeonhole: d differing bits fall into at most d blocks), so every such
pair shares a block value and lands in a common bucket. Comparing only pairs within
buckets therefore finds exactly the brute-force pairs, while random hashes rarely share
a 32-bit block.

Rules and files: `hash_training_source` (results/captions/{dataset}.jsonl) and `hash_test_split`
(a benchmark's test images) write results/dedup/hashes/{dataset}.train.tsv / .test.tsv, one
`key<TAB>phash` row per image (hex; `!reason` for an image that could not be hashed). `dedup`
reads the run's training hashes and every protected test split and writes
results/dedup/{run}/removed.tsv (`image`, `collides_with`, `distance`, `reason`: the leakage
audit) and summary.json (counts per source, per pair of datasets and per threshold);
`build_shards` leaves the removed images out.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

import imagehash
import numpy as np
from tqdm import tqdm

from .formats.base import FormatError
from .imageio import load_rgb
from .parallel import imap
from .schema import defaults

log = logging.getLogger(__name__)
HASH_SIZE = defaults("dedup")["hash_size"]  # pHash side: 8 gives the paper's 64-bit hash

HashItem = tuple[str, str, tuple[int, int, int, int] | None]  # key, image path, crop


# --------------------------------------------------------------------- hashing
def phash(image, hash_size: int = HASH_SIZE) -> int:
    bits = imagehash.phash(image, hash_size=hash_size).hash.ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


def _hash_file(
    job: tuple[str, list[tuple[str, tuple | None]], int],
) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """Hash every crop of one file, decoding the file once."""
    path, crops, hash_size = job
    try:
        image = load_rgb(path)
    except FormatError as err:
        return [], [(key, err.reason) for key, _ in crops]
    out = []
    for key, crop in crops:
        region = image if crop is None else image.crop((crop[0], crop[1], crop[0] + crop[2], crop[1] + crop[3]))
        out.append((key, phash(region, hash_size)))
    return out, []


def hash_items(
    items: Iterable[HashItem], hash_size: int = HASH_SIZE, workers: int = 1, desc: str = "phash"
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """pHash of every item, grouped by file so a large scene is decoded once for all its
    tiles; returns ({key: hash}, [(key, why it could not be hashed)])."""
    by_file: dict[str, list] = defaultdict(list)
    for key, path, crop in items:
        by_file[path].append((key, crop))
    jobs = [(path, crops, hash_size) for path, crops in sorted(by_file.items())]
    hashes, failures = {}, []
    total = sum(len(c) for _, c, _ in jobs)
    with tqdm(total=total, desc=desc, unit="img") as bar:
        for done, failed in imap(_hash_file, jobs, workers, chunksize=16):
            hashes.update(done)
            failures.extend(failed)
            bar.update(len(done) + len(failed))
    for key, reason in failures:
        log.warning("not hashed: %s: %s", key, reason)
    return hashes, failures


def write_hashes(path: str | Path, hashes: dict[str, int], failures: list[tuple[str, str]], hash_bits: int) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width = (hash_bits + 3) // 4
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["key", "phash"])
        for key in sorted(hashes):
            writer.writerow([key, f"{hashes[key]:0{width}x}"])
        for key, reason in sorted(failures):
            writer.writerow([key, f"!{reason}"])


def read_hashes(path: str | Path) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    keys, values, failures = [], [], []
    with open(path, newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader)
        for key, value in reader:
            if value.startswith("!"):
                failures.append((key, value[1:]))
            else:
                keys.append(key)
                values.append(int(value, 16))
    return keys, np.array(values, dtype=np.uint64), failures


# --------------------------------------------------------------------- search
def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def block_values(hashes: np.ndarray, blocks: int, bits: int = 64) -> list[np.ndarray]:
    """Split each hash into `blocks` contiguous bit fields of near-equal width."""
    widths = [bits // blocks + (1 if i < bits % blocks else 0) for i in range(blocks)]
    out, shift = [], 0
    for w in widths:
        mask = np.uint64((1 << w) - 1)
        out.append((hashes >> np.uint64(shift)) & mask)
        shift += w
    return out


def default_blocks(max_distance: int) -> int:
    return max_distance + 1


# Comparisons held in memory at once when a bucket (or a brute-force pass) is large: a bucket
# of m equal block values is compared in row chunks of this many cells, not as m x m pairs.
_CELLS_PER_CHUNK = 1 << 22
# Narrower blocks than this make buckets so large that comparing all pairs is as fast.
_MIN_BLOCK_BITS = 16


def _check_blocks(blocks: int, max_distance: int) -> None:
    if blocks <= max_distance:
        raise ValueError(f"{blocks} blocks cannot guarantee finding distances up to {max_distance}")


def _bucket_runs(values: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    edges = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(values)]])
    return order, [(s, e) for s, e in zip(starts, ends) if e - s > 1]


def _close_pairs_among(hashes: np.ndarray, members: np.ndarray, max_distance: int):
    """Yield (a, b) index arrays, a < b, of members within max_distance, in bounded chunks."""
    members = np.sort(members)
    step = max(1, _CELLS_PER_CHUNK // len(members))
    for start in range(0, len(members), step):
        rows = members[start : start + step]
        later = members[start + 1 :]  # each pair once: compare a row with the members after it
        d = np.bitwise_count(hashes[rows][:, None] ^ hashes[later][None, :])
        i, j = np.nonzero(d <= max_distance)
        keep = j >= i  # later[j] comes after rows[i] exactly when j >= i
        yield rows[i[keep]], later[j[keep]]


def _pair_chunks_within(hashes: np.ndarray, max_distance: int, blocks: int | None, bits: int):
    blocks = blocks or default_blocks(max_distance)
    _check_blocks(blocks, max_distance)
    if bits // blocks < _MIN_BLOCK_BITS:
        yield from _close_pairs_among(hashes, np.arange(len(hashes)), max_distance)
        return
    for values in block_values(hashes, blocks, bits):
        order, runs = _bucket_runs(values)
        for start, end in runs:
            yield from _close_pairs_among(hashes, order[start:end], max_distance)


def _unique_pairs(found: list[np.ndarray], columns: int) -> np.ndarray:
    """Sorted distinct (i, j) rows of the found chunks. Each pair is packed into one int64
    (i * columns + j, the same order), because np.unique(axis=0) sorts rows as structured
    records, about ten times slower: it dominated the search when a bucket holds many equal
    hashes."""
    found = [f for f in found if len(f)]
    if not found:
        return np.empty((0, 2), np.int64)
    packed = np.unique(np.concatenate(found).astype(np.int64) @ np.array([columns, 1], np.int64))
    return np.stack([packed // columns, packed % columns], 1)


def pairs_within(hashes: np.ndarray, max_distance: int, blocks: int | None = None, bits: int = 64) -> np.ndarray:
    """All (i, j), i < j, with Hamming distance <= max_distance; exact when blocks > max_distance.

    Blocks narrower than 16 bits (large distances) make buckets that hold most hashes, so all
    pairs are then compared directly, in bounded chunks, which finds the same pairs.
    """
    found = [np.stack([a, b], 1) for a, b in _pair_chunks_within(hashes, max_distance, blocks, bits)]
    return _unique_pairs(found, len(hashes))


def pairs_across(
    left: np.ndarray, right: np.ndarray, max_distance: int, blocks: int | None = None, bits: int = 64
) -> np.ndarray:
    """All (i, j) with left[i] and right[j] within max_distance (block search, or all pairs in
    bounded chunks when blocks would be narrower than 16 bits)."""
    blocks = blocks or default_blocks(max_distance)
    _check_blocks(blocks, max_distance)
    found = []
    if bits // blocks < _MIN_BLOCK_BITS:
        step = max(1, _CELLS_PER_CHUNK // max(1, len(right)))
        for start in range(0, len(left), step):
            i, j = np.nonzero(np.bitwise_count(left[start : start + step, None] ^ right[None, :]) <= max_distance)
            found.append(np.stack([i + start, j], 1))
    else:
        for lv, rv in zip(block_values(left, blocks, bits), block_values(right, blocks, bits)):
            order = np.argsort(rv, kind="stable")
            sorted_rv = rv[order]
            lo, hi = np.searchsorted(sorted_rv, lv, "left"), np.searchsorted(sorted_rv, lv, "right")
            for row in np.flatnonzero(hi > lo):
                candidates = order[lo[row] : hi[row]]
                close = candidates[np.bitwise_count(right[candidates] ^ left[row]) <= max_distance]
                found.append(np.stack([np.full(len(close), row), close], 1))
    return _unique_pairs(found, len(right))


def brute_pairs_within(hashes: np.ndarray, max_distance: int, chunk: int = 2048) -> np.ndarray:
    """Reference: every pair compared (vectorised XOR and popcount)."""
    out = []
    for start in range(0, len(hashes), chunk):
        block = hashes[start : start + chunk]
        d = np.bitwise_count(block[:, None] ^ hashes[None, :])
        i, j = np.nonzero(d <= max_distance)
        i = i + start
        keep = i < j
        out.append(np.stack([i[keep], j[keep]], 1))
    return np.unique(np.concatenate(out), axis=0) if out else np.empty((0, 2), np.int64)


def duplicate_groups(hashes: np.ndarray, max_distance: int, blocks: int | None = None, bits: int = 64) -> np.ndarray:
    """Component label of every hash: hashes joined by any chain of pairs within max_distance.

    Equal hashes (video frames, blank tiles) are merged before the search, so m copies of
    one hash cost m, not m x m pairs; the pairs between distinct values are streamed in
    bounded chunks into scipy's connected components. Labels are the smallest member index.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(hashes) == 0:
        return np.empty(0, np.int64)
    unique, inverse = np.unique(hashes, return_inverse=True)
    edges = _unique_pairs(
        [np.stack([a, b], 1) for a, b in _pair_chunks_within(unique, max_distance, blocks, bits)], len(unique)
    )
    graph = coo_matrix((np.ones(len(edges), np.int8), (edges[:, 0], edges[:, 1])), shape=(len(unique),) * 2)
    _, component = connected_components(graph, directed=False)
    label = component[inverse.ravel()]
    smallest = np.full(label.max() + 1, len(hashes), np.int64)
    np.minimum.at(smallest, label, np.arange(len(hashes)))
    return smallest[label]


# --------------------------------------------------------------------- the run's filter
def _source_of(key: str) -> str:
    return key.split(":", 1)[0]


def check_threshold(value: int, name: str, bits: int = 64) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= bits:
        raise ValueError(
            f"{name} must be an integer in [1, {bits}] (duplicate when the Hamming distance of "
            f"two {bits}-bit hashes is below it), got {value!r}"
        )


def deduplicate(
    train: dict[str, int],
    tests: dict[str, dict[str, int]],
    threshold: int,
    source_order: list[str],
    blocks: int | None = None,
    bits: int = 64,
    leak_threshold: int | None = None,
) -> tuple[list[dict], dict]:
    """Decide which training images to remove.

    `train` maps "source:image" keys to hashes, `tests` maps benchmark -> {key: hash}.
    Test leaks: every training image whose distance to a test image is below
    `leak_threshold` (None: `threshold`) is removed. Training duplicates: distance below
    `threshold`; each group of duplicates (connected through any chain of close pairs) keeps
    one image, the first that is not itself a test leak in the order source listed first in
    the run, then smallest key; the others are recorded as duplicates of the kept one.
    `blocks` tunes the duplicate search (the leak search picks its own).
    """
    leak_threshold = threshold if leak_threshold is None else leak_threshold
    check_threshold(threshold, "dedup threshold", bits)
    check_threshold(leak_threshold, "dedup leak threshold", bits)
    keys = sorted(train, key=lambda k: (source_order.index(_source_of(k)), k))
    hashes = np.array([train[k] for k in keys], dtype=np.uint64)
    removed = _test_leaks(keys, hashes, tests, leak_threshold, bits)

    group = duplicate_groups(hashes, threshold - 1, blocks, bits)
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


def _test_leaks(keys, hashes, tests, leak_threshold, bits) -> dict[int, dict]:
    """{train index: row} of training images close to a test image (the closest one recorded)."""
    removed: dict[int, dict] = {}
    for bench, test in sorted(tests.items()):
        tkeys = sorted(test)
        thashes = np.array([test[k] for k in tkeys], dtype=np.uint64)
        pairs = pairs_across(hashes, thashes, leak_threshold - 1, None, bits)
        if not len(pairs):
            continue
        dist = hamming(hashes[pairs[:, 0]], thashes[pairs[:, 1]])
        for (i, j), d in zip(pairs.tolist(), dist.tolist()):
            if i not in removed or removed[i]["distance"] > d:
                removed[i] = {
                    "image": keys[i],
                    "collides_with": tkeys[j],
                    "distance": d,
                    "reason": f"test leak: {bench}",
                }
    return removed


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
