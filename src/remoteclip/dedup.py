"""pHash de-duplication inside a run's training set and against evaluation test splits
(paper §III-B-3: 64-bit p-Hash, "blockwise local detection", duplicate when the Hamming
distance is below 2).

Candidate search (sub-quadratic, exact): to find every pair at distance <= d, split each
hash into b >= d + 1 blocks. Two hashes that differ in at most d bits leave at least one
block untouched (pigeonhole: d differing bits fall into at most d blocks), so every such
pair shares a block value and lands in a common bucket. Comparing only pairs within
buckets therefore finds exactly the brute-force pairs, while random hashes rarely share
a 32-bit block.
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

log = logging.getLogger(__name__)

HashItem = tuple[str, str, tuple[int, int, int, int] | None]  # key, image path, crop


# --------------------------------------------------------------------- hashing
def phash(image, hash_size: int = 8) -> int:
    bits = imagehash.phash(image, hash_size=hash_size).hash.ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


def _hash_file(job: tuple[str, list[tuple[str, tuple | None]], int]) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
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


def hash_items(items: Iterable[HashItem], hash_size: int = 8, workers: int = 1,
               desc: str = "phash") -> tuple[dict[str, int], list[tuple[str, str]]]:
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


def _bucket_runs(values: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    edges = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(values)]])
    return order, [(s, e) for s, e in zip(starts, ends) if e - s > 1]


def pairs_within(hashes: np.ndarray, max_distance: int, blocks: int | None = None, bits: int = 64) -> np.ndarray:
    """All (i, j), i < j, with Hamming distance <= max_distance; exact when blocks > max_distance."""
    blocks = blocks or default_blocks(max_distance)
    if blocks <= max_distance:
        raise ValueError(f"{blocks} blocks cannot guarantee finding distances up to {max_distance}")
    found = []
    for values in block_values(hashes, blocks, bits):
        order, runs = _bucket_runs(values)
        for start, end in runs:
            members = np.sort(order[start:end])
            i, j = np.triu_indices(len(members), k=1)
            a, b = members[i], members[j]
            keep = hamming(hashes[a], hashes[b]) <= max_distance
            found.append(np.stack([a[keep], b[keep]], 1))
    if not found:
        return np.empty((0, 2), np.int64)
    return np.unique(np.concatenate(found), axis=0)


def pairs_across(left: np.ndarray, right: np.ndarray, max_distance: int, blocks: int | None = None,
                 bits: int = 64) -> np.ndarray:
    """All (i, j) with left[i] and right[j] within max_distance."""
    blocks = blocks or default_blocks(max_distance)
    if blocks <= max_distance:
        raise ValueError(f"{blocks} blocks cannot guarantee finding distances up to {max_distance}")
    found = []
    for lv, rv in zip(block_values(left, blocks, bits), block_values(right, blocks, bits)):
        buckets: dict[int, list[int]] = defaultdict(list)
        for j, v in enumerate(rv.tolist()):
            buckets[v].append(j)
        for i, v in enumerate(lv.tolist()):
            js = buckets.get(v)
            if js:
                js = np.array(js)
                keep = hamming(np.full(len(js), left[i], np.uint64), right[js]) <= max_distance
                found.extend((i, int(j)) for j in js[keep])
    if not found:
        return np.empty((0, 2), np.int64)
    return np.unique(np.array(found, np.int64), axis=0)


def brute_pairs_within(hashes: np.ndarray, max_distance: int, chunk: int = 2048) -> np.ndarray:
    """Reference: every pair compared (vectorised XOR and popcount)."""
    out = []
    for start in range(0, len(hashes), chunk):
        block = hashes[start:start + chunk]
        d = np.bitwise_count(block[:, None] ^ hashes[None, :])
        i, j = np.nonzero(d <= max_distance)
        i = i + start
        keep = i < j
        out.append(np.stack([i[keep], j[keep]], 1))
    return np.unique(np.concatenate(out), axis=0) if out else np.empty((0, 2), np.int64)


# --------------------------------------------------------------------- the run's filter
def _source_of(key: str) -> str:
    return key.split(":", 1)[0]


def deduplicate(train: dict[str, int], tests: dict[str, dict[str, int]], threshold: int, source_order: list[str],
                blocks: int | None = None, bits: int = 64) -> tuple[list[dict], dict]:
    """Decide which training images to remove.

    `train` maps "source:image" keys to hashes, `tests` maps benchmark -> {key: hash}.
    Duplicate means distance < threshold. Inside the training set, each group of
    duplicates (connected through any chain of close pairs) keeps one image: the one from
    the source listed first in the run, then the smallest key. Every training image close
    to a test image is removed.
    """
    max_distance = threshold - 1
    keys = sorted(train, key=lambda k: (source_order.index(_source_of(k)), k))
    hashes = np.array([train[k] for k in keys], dtype=np.uint64)
    removed: dict[int, dict] = {}

    for bench, test in sorted(tests.items()):
        tkeys = sorted(test)
        thashes = np.array([test[k] for k in tkeys], dtype=np.uint64)
        for i, j in pairs_across(hashes, thashes, max_distance, blocks, bits).tolist():
            d = int(hamming(hashes[i:i + 1], thashes[j:j + 1])[0])
            if i not in removed or removed[i]["distance"] > d:
                removed[i] = {"image": keys[i], "collides_with": tkeys[j], "distance": d,
                              "reason": f"test leak: {bench}"}

    parent = list(range(len(keys)))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    pairs = pairs_within(hashes, max_distance, blocks, bits)
    for i, j in pairs.tolist():
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)  # the smallest index (first in order) is the root
    distance = {(i, j): int(d) for (i, j), d in zip(pairs.tolist(), hamming(hashes[pairs[:, 0]], hashes[pairs[:, 1]]))} \
        if len(pairs) else {}
    for i in sorted({i for p in pairs.tolist() for i in p}):
        root = find(i)
        if root != i and i not in removed:
            d = distance.get((min(root, i), max(root, i)), int(hamming(hashes[root:root + 1], hashes[i:i + 1])[0]))
            removed[i] = {"image": keys[i], "collides_with": keys[root], "distance": d, "reason": "training duplicate"}

    rows = [removed[i] for i in sorted(removed, key=lambda i: keys[i])]
    return rows, summarize(rows, keys)


def summarize(rows: list[dict], keys: list[str]) -> dict:
    pair_counts = Counter()
    for r in rows:
        other = r["collides_with"].split(":", 1)[0]
        pair_counts[(_source_of(r["image"]), other, r["reason"])] += 1
    totals = Counter(_source_of(k) for k in keys)
    gone = Counter(_source_of(r["image"]) for r in rows)
    return {
        "images": len(keys),
        "removed": len(rows),
        "kept": len(keys) - len(rows),
        "per_source": {s: {"images": totals[s], "removed": gone[s], "kept": totals[s] - gone[s]} for s in sorted(totals)},
        "pairs": [{"source": a, "collides_with": b, "reason": why, "removed": n}
                  for (a, b, why), n in sorted(pair_counts.items())],
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
