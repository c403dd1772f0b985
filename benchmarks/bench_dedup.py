"""pHash de-duplication against the libraries a user would pick: imagededup's PHash for hashing
an image folder and for its duplicate search (`find_duplicates` / `HashEval` with
`max_distance_threshold`), and faiss's binary indexes for the leak search (training hashes
against test hashes), same pairs asserted at the same threshold.

Leak search (`--train` x `--test` random 64-bit hashes, default 5,000,000 x 60,000, the size of
RS5M against the protected test splits; a quarter of the test hashes planted into the training
set at distances 0..17, so pairs lie at, below and above every threshold, and 20,000 equal
training frames plus 2,000 within 3 bits of one test hash), at thresholds 2, 10 and 16
(`dedup.leak_threshold`: distance < threshold). Ours (`pairs_across`, multi-index hashing)
runs on all of it. Peers, each asserted to find exactly our pairs on the rows it ran:
faiss-cpu's `IndexBinaryFlat.range_search` (exact scan in C++, its OpenMP threads; faiss's own
range search keeps distance < radius, checked) on the first `--peer-sample` training hashes,
its time scaled to all of them (a scan's time is proportional to the hashes scanned); numpy
XOR + popcount of every pair (what this project ran above threshold 4 before multi-index
hashing) on `--brute-sample`, scaled the same way; and faiss's multi-index hashing,
`IndexBinaryMultiHash` (4 tables of 16 bits, nflip = (threshold - 1) // 4: exact, every bit in
a table), run whole against ours on the peer sample at thresholds 2 and 10 (at 16 its hash
sets of candidates take hours).

Threshold: our `dedup.threshold: t` keeps pairs at Hamming distance < t (the paper's "below
2"), `remoteclip.dedup.pairs_within(h, t - 1)`; imagededup keeps distance <= its
`max_distance_threshold`, so it is given t - 1.

Hashes: ours is imagehash's pHash (median of the 8x8 low DCT block, bit = coefficient >
median); imagededup's takes the median without the DC term and sets bit = coefficient >=
median, so the two hashes of one image differ, typically in one bit (the row says how many). The hashing row therefore
asserts the end result instead: each library's own hashes and own search find the same pairs
(the planted byte copies) on the same folder.

Search: the same 64-bit hashes (random, 1 % near-duplicates with 0-2 bits flipped) go to both,
at each `--sizes`, plus a bucket-heavy set (`--equal` copies of one hash, as blank tiles or
video frames give). imagededup's search is quadratic in Python (brute_force_cython rebuilds
its list of all hashes for every query; bktree walks a Python tree), hours at 80k on this
machine, so it answers `--queries` sampled queries against all n hashes and its time is
extrapolated to all n queries (index build + per-query time x n; a query's cost does not
depend on the other queries); the pairs of those queries are asserted equal to ours.
`--queries 0` runs every query. Brute force (numpy XOR + popcount over all pairs, not a
library: what one writes by hand) is the exactness oracle for our pairs.

Hashing: the rule's streamed stage (`hash_source`, a fresh cache) and its rerun with the
images unchanged (every hash from the cache, as after a caption change), against imagededup
encoding the folder (it keeps no cache, so a rerun costs it the same).

    .venv/bin/python benchmarks/bench_dedup.py [--sizes 20000 80000] [--threshold 2] [--queries 1000]
        [--train 5000000] [--test 60000] [--leak-thresholds 2 10 16] [--peer-sample 500000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchlib import Row, add_json_flag, report, timed, use_peer
from remoteclip.dedup import (
    brute_pairs_across,
    brute_pairs_within,
    hash_source,
    pairs_across,
    pairs_within,
    read_hashes,
)

IMAGEDEDUP = (
    "imagededup==0.3.3.post2",
    "scikit-learn==1.9.1",  # imagededup imports it at module level (cosine similarity for its CNN)
    "joblib==1.6.0",
    "threadpoolctl==3.8.0",
    "narwhals==2.29.0",
    "cloudpickle==3.1.3",
)
FAISS = ("faiss-cpu==1.15.1",)  # its other requirements (numpy, packaging) come from the venv
WORKERS = os.cpu_count() or 1


def imagededup():
    """Import imagededup (installed into .bench/ on first use); returns (module, PHash)."""
    use_peer("imagededup", IMAGEDEDUP)
    import imagededup as module
    from imagededup.methods import PHash

    return module, PHash


def faiss():
    """Import faiss (installed into .bench/ on first use)."""
    use_peer("faiss", FAISS)
    import faiss as module

    return module


def hashes_with_duplicates(n: int, rng: np.random.Generator) -> np.ndarray:
    """Random 64-bit hashes with 1 % near-duplicates (0-2 bits flipped)."""
    h = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, n, dtype=np.uint64)
    for i in rng.choice(n, n // 100, replace=False):
        j = int(rng.integers(n))
        flips = rng.choice(64, rng.integers(0, 3), replace=False)
        h[j] = h[i] ^ np.uint64(sum(1 << int(b) for b in flips))
    return h


def bucket_heavy(n: int, equal: int, rng: np.random.Generator) -> np.ndarray:
    """n hashes of which `equal` are one value and another `equal // 10` one more value."""
    h = hashes_with_duplicates(n, rng)
    h[:equal] = h[0]
    h[equal : equal + equal // 10] = h[equal]
    return h[rng.permutation(n)]


def pair_set(pairs) -> set[tuple[int, int]]:
    return {(min(int(a), int(b)), max(int(a), int(b))) for a, b in pairs}


def imagededup_pairs(results: dict) -> set[tuple[int, int]]:
    """imagededup's {query key: [duplicate keys]} (keys are indices) as unordered pairs."""
    return pair_set((q, d) for q, dups in results.items() for d in dups)


def pairs_touching(pairs: np.ndarray, queries: np.ndarray) -> set[tuple[int, int]]:
    """Our pairs that involve one of the queries: what imagededup returns for those queries."""
    if len(pairs) == 0:
        return set()
    hit = np.isin(pairs[:, 0], queries) | np.isin(pairs[:, 1], queries)
    return pair_set(pairs[hit])


def bktree_depth(hashes: np.ndarray) -> int:
    """The longest run of equal hashes: imagededup's BKTree chains them at distance 0, one
    recursive call of BKTree._insert_in_tree per link (Python's default limit is 1,000)."""
    return int(np.unique(hashes, return_counts=True)[1].max())


def imagededup_search(hashes: np.ndarray, max_distance: int, queries: int, method: str, seed: int = 0):
    """imagededup's search of sampled queries against all hashes: (seconds extrapolated to all
    queries, seconds measured, query indices, pairs found)."""
    from imagededup.handlers.search.bktree import BKTree
    from imagededup.handlers.search.retrieval import HashEval
    from imagededup.methods import PHash

    encoding = {str(i): f"{int(h):016x}" for i, h in enumerate(hashes)}
    n = len(hashes)
    picked = np.arange(n) if not queries or queries >= n else np.random.default_rng(seed).choice(n, queries, False)
    asked = {str(i): encoding[str(i)] for i in picked}
    default_limit = sys.getrecursionlimit()
    if method == "bktree":
        # its tree insert recurses once per node on the path, and equal hashes form one path
        sys.setrecursionlimit(max(default_limit, bktree_depth(hashes) + 1000))
    seconds, search = timed(
        HashEval,
        encoding,
        asked,
        PHash.hamming_distance,
        verbose=False,
        threshold=max_distance,
        search_method=method,
        num_dist_workers=WORKERS,
    )
    build = timed(BKTree, encoding, PHash.hamming_distance)[0] if method == "bktree" else 0.0
    sys.setrecursionlimit(default_limit)
    # the queries' share: what the run took beyond building the tree (timed again on its own,
    # so at zero where the build is nearly all of it, as with long chains of equal hashes)
    extrapolated = build + max(seconds - build, 0.0) * n / len(picked)
    found = imagededup_pairs({int(k): [int(d) for d in v] for k, v in search.retrieve_results().items()})
    return extrapolated, seconds, picked, found


def search_rows(name: str, hashes: np.ndarray, threshold: int, queries: int, brute: bool) -> list[Row]:
    module, _ = imagededup()
    d = threshold - 1  # ours: distance < threshold; imagededup: distance <= max_distance_threshold
    t_ours, ours = timed(pairs_within, hashes, d)
    rows = []
    if brute:
        t_brute, oracle = timed(brute_pairs_within, hashes, d)
        assert np.array_equal(ours, oracle), "block search and brute force disagree"
        rows.append(
            Row(
                f"{name}: pairs at distance < {threshold}",
                t_ours,
                t_brute,
                "brute force, numpy XOR+popcount of all pairs (hand-written, not a library)",
                f"same {len(ours)} pairs",
            )
        )
    depth = bktree_depth(hashes)
    for method in ("brute_force_cython", "bktree"):
        extrapolated, measured, picked, found = imagededup_search(hashes, d, queries, method)
        assert found == pairs_touching(ours, picked), f"imagededup {method} finds other pairs"
        sampled = len(picked) < len(hashes)
        note = (
            f"{len(picked)} of {len(hashes)} queries run ({measured:.1f} s, {WORKERS} processes), "
            "time extrapolated to all"
            if sampled
            else f"all queries, {WORKERS} processes"
        )
        if method == "bktree" and depth > 900:  # near Python's default limit of 1,000
            note += f"; its tree insert recursed {depth} deep (equal hashes): run with a raised recursion limit"
        rows.append(
            Row(
                f"{name}: pairs at distance < {threshold}",
                t_ours,
                extrapolated,
                f"imagededup {module.__version__} find_duplicates ({method}, max_distance_threshold={d})",
                f"same pairs for the {len(picked)} queries ({len(found)} pairs)",
                note,
                peer_extrapolated=sampled,
            )
        )
    return rows


def plant_images(root: Path, scenes: int, size: int) -> list[tuple[str, str]]:
    """Distinct images (scenes in their eight flips and rotations) and one byte copy of each
    scene: (key, path), the copies being the only duplicates."""
    from PIL import Image

    from remoteclip.synthetic.scenes import SCENES, render_scene

    kinds = list(SCENES)
    files = []
    root.mkdir(parents=True, exist_ok=True)
    for i in range(scenes):
        base = Image.fromarray(render_scene(np.random.default_rng(i), kinds[i % len(kinds)], size).image)
        for k in range(8):
            image = base.rotate(90 * (k % 4))
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if k >= 4 else image
            path = root / f"{i:04d}_{k}.png"
            image.save(path)
            files.append((path.name, str(path)))
        copy = root / f"{i:04d}_copy.png"
        shutil.copyfile(root / f"{i:04d}_0.png", copy)
        files.append((copy.name, str(copy)))
    return files


def hashing_rows(scenes: int, size: int, threshold: int) -> list[Row]:
    module, PHash = imagededup()
    d = threshold - 1
    with tempfile.TemporaryDirectory() as tmp:
        files = plant_images(Path(tmp) / "images", scenes, size)
        items = [(k, p, None) for k, p in files]
        out, cache = Path(tmp) / "hashes.tsv", Path(tmp) / "cache.tsv"
        t_ours, counts = timed(hash_source, items, out, cache, workers=WORKERS)
        t_again, again = timed(hash_source, items, out, cache, workers=WORKERS)
        assert counts["hashed"] == again["cached"] == len(files) and not counts["failed"]
        keys, values, _ = read_hashes(out)
        hashes = dict(zip(keys, values.tolist()))
        phasher = PHash(verbose=False)
        t_peer, encoding = timed(phasher.encode_images, str(Path(tmp) / "images"), num_enc_workers=WORKERS)
    keys = sorted(hashes)
    ours = {(keys[i], keys[j]) for i, j in pairs_within(np.array([hashes[k] for k in keys], np.uint64), d)}
    found = phasher.find_duplicates(encoding_map=encoding, max_distance_threshold=d, num_dist_workers=WORKERS)
    theirs = {tuple(sorted((q, m))) for q, dups in found.items() for m in dups}
    planted = {(f"{i:04d}_0.png", f"{i:04d}_copy.png") for i in range(scenes)}
    assert ours == theirs == planted, "the two hashes find other pairs on the same images"
    apart = np.array([bin(hashes[k] ^ int(encoding[k], 16)).count("1") for k in keys])
    peer = f"imagededup {module.__version__} PHash.encode_images"
    equal = f"same {len(ours)} pairs at distance < {threshold}, each with its own hashes"
    return [
        Row(
            f"pHash of {len(files)} {size} px PNG files ({WORKERS} processes each)",
            t_ours,
            t_peer,
            peer,
            equal,
            f"ours: the rule's streamed stage, fresh cache; one image's two hashes differ in "
            f"{np.median(apart):g} bit(s) (median; max {apart.max()})",
        ),
        Row(
            f"pHash rerun, {len(files)} images unchanged (after a caption change)",
            t_again,
            t_peer,
            peer,
            f"ours: the same hash file; {equal}",
            "ours: every hash from the cache (key, size, mtime); imagededup keeps no cache, so its time is "
            "the one encoding above (a rerun encodes again)",
        ),
    ]


def leak_hashes(n_train: int, n_test: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random training and test hashes with leaks planted at distances 0..17 and a cluster of
    equal and near-equal video frames on one test hash."""
    train = rng.integers(0, 2**64 - 1, n_train, dtype=np.uint64, endpoint=True)
    test = rng.integers(0, 2**64 - 1, n_test, dtype=np.uint64, endpoint=True)
    leaked = rng.choice(n_test, n_test // 4, replace=False)
    at = rng.choice(n_train, len(leaked), replace=False)
    for i, t in zip(at, leaked):
        flips = rng.choice(64, rng.integers(0, 18), replace=False)
        train[i] = test[t] ^ np.uint64(sum(1 << int(b) for b in flips))
    frames = rng.choice(np.setdiff1d(np.arange(n_train), at), min(22_000, n_train // 10), replace=False)
    train[frames] = test[0]
    for i in frames[: len(frames) // 11]:  # a few frames apart: within 3 bits
        train[i] = test[0] ^ np.uint64(sum(1 << int(b) for b in rng.choice(64, rng.integers(1, 4), replace=False)))
    return train, test


def pair_rows(pairs: np.ndarray) -> set[tuple[int, int]]:
    return set(map(tuple, pairs.tolist()))


def faiss_flat_pairs(module, train: np.ndarray, test: np.ndarray, threshold: int) -> np.ndarray:
    """(train, test) pairs at distance < threshold by faiss's exact scan."""
    index = module.IndexBinaryFlat(64)
    index.add(train.view(np.uint8).reshape(-1, 8))
    lims, _, ids = index.range_search(test.view(np.uint8).reshape(-1, 8), threshold)
    return np.stack([ids, np.repeat(np.arange(len(test)), np.diff(lims).astype(np.int64))], 1)


def faiss_multihash_pairs(module, train: np.ndarray, test: np.ndarray, threshold: int) -> np.ndarray:
    """The same by faiss's multi-index hashing, set up to be exact: 4 tables of 16 bits cover
    the 64 bits, and (threshold - 1) // 4 flips per table reach every pair by pigeonhole."""
    index = module.IndexBinaryMultiHash(64, 4, 16)
    index.nflip = (threshold - 1) // 4
    index.add(train.view(np.uint8).reshape(-1, 8))
    lims, _, ids = index.range_search(test.view(np.uint8).reshape(-1, 8), threshold)
    return np.stack([ids, np.repeat(np.arange(len(test)), np.diff(lims).astype(np.int64))], 1)


def leak_rows(n_train: int, n_test: int, thresholds: list[int], peer_sample: int, brute_sample: int) -> list[Row]:
    module = faiss()
    train, test = leak_hashes(n_train, n_test, np.random.default_rng(24))
    peer_sample, brute_sample = min(peer_sample, n_train), min(brute_sample, n_train)
    flat = f"faiss-cpu {module.__version__} IndexBinaryFlat.range_search (exact scan, {module.omp_get_max_threads()} threads)"
    rows = []
    for t in thresholds:
        name = f"leak search, {n_train:,} training x {n_test:,} test hashes: pairs at distance < {t}"
        t_ours, ours = timed(pairs_across, train, test, t - 1, workers=WORKERS)
        note = f"ours on all of it ({WORKERS} threads, {len(ours):,} pairs)"

        def sampled(size: int, ours=ours) -> set[tuple[int, int]]:
            return pair_rows(ours[ours[:, 0] < size])

        t_flat, found = timed(faiss_flat_pairs, module, train[:peer_sample], test, t)
        assert pair_rows(found) == sampled(peer_sample), f"faiss's scan finds other pairs at {t}"
        rows.append(
            Row(
                name,
                t_ours,
                t_flat * n_train / peer_sample,
                flat,
                f"same {len(found):,} pairs on the first {peer_sample:,} training hashes",
                f"{note}; faiss ran on {peer_sample:,} of the training hashes ({t_flat:.1f} s), time scaled to all",
                peer_extrapolated=peer_sample < n_train,
            )
        )
        t_brute, found = timed(brute_pairs_across, train[:brute_sample], test, t - 1)
        assert pair_rows(found) == sampled(brute_sample), f"brute force finds other pairs at {t}"
        rows.append(
            Row(
                name,
                t_ours,
                t_brute * n_train / brute_sample,
                "brute force, numpy XOR+popcount of all pairs (the search above threshold 4 before; not a library)",
                f"same {len(found):,} pairs on the first {brute_sample:,} training hashes",
                f"{note}; brute force ran on {brute_sample:,} of the training hashes ({t_brute:.1f} s), "
                "time scaled to all",
                peer_extrapolated=brute_sample < n_train,
            )
        )
        if t <= 10:
            rows.append(multihash_row(module, train[:peer_sample], test, t))
    return rows


def multihash_row(module, train: np.ndarray, test: np.ndarray, threshold: int) -> Row:
    t_ours, ours = timed(pairs_across, train, test, threshold - 1, workers=WORKERS)
    t_peer, found = timed(faiss_multihash_pairs, module, train, test, threshold)
    assert pair_rows(found) == pair_rows(ours), f"faiss's multi-index hashing finds other pairs at {threshold}"
    return Row(
        f"leak search, {len(train):,} training x {len(test):,} test hashes: pairs at distance < {threshold}",
        t_ours,
        t_peer,
        f"faiss-cpu {module.__version__} IndexBinaryMultiHash (4 x 16 bits, nflip {(threshold - 1) // 4}: exact)",
        f"same {len(ours):,} pairs",
        "both whole; faiss builds its tables in one thread and keeps each query's candidates in a hash set",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20000, 80000])
    ap.add_argument("--threshold", type=int, default=2, help="dedup.threshold: pairs at distance < threshold")
    ap.add_argument("--queries", type=int, default=1000, help="imagededup queries run per set (0: all)")
    ap.add_argument("--equal", type=int, default=2000, help="copies of one hash in the bucket-heavy set")
    ap.add_argument("--bucket-size", type=int, default=20000, help="hashes in the bucket-heavy set")
    ap.add_argument("--scenes", type=int, default=60, help="rendered scenes for the hashing row (x9 files)")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--no-brute", action="store_true", help="skip the all-pairs oracle (51 s at 80k)")
    ap.add_argument("--train", type=int, default=5_000_000, help="training hashes of the leak search")
    ap.add_argument("--test", type=int, default=60_000, help="test hashes of the leak search")
    ap.add_argument("--leak-thresholds", type=int, nargs="+", default=[2, 10, 16])
    ap.add_argument("--peer-sample", type=int, default=500_000, help="training hashes faiss runs on")
    ap.add_argument("--brute-sample", type=int, default=100_000, help="training hashes brute force runs on")
    add_json_flag(ap)
    args = ap.parse_args()
    rows = hashing_rows(args.scenes, args.image_size, args.threshold)
    rows += leak_rows(args.train, args.test, args.leak_thresholds, args.peer_sample, args.brute_sample)
    for n in args.sizes:
        rows += search_rows(
            f"{n} hashes",
            hashes_with_duplicates(n, np.random.default_rng(n)),
            args.threshold,
            args.queries,
            not args.no_brute,
        )
    heavy = bucket_heavy(args.bucket_size, args.equal, np.random.default_rng(1))
    rows += search_rows(
        f"{args.bucket_size} hashes, {args.equal} of them equal (bucket-heavy)",
        heavy,
        args.threshold,
        args.queries,
        not args.no_brute,
    )
    report(rows, args.json)


if __name__ == "__main__":
    main()
