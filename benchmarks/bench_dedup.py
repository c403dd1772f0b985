"""Dedup candidate search (block buckets) against brute-force all-pairs (numpy XOR and
popcount) on 20k and 80k hashes, in the same run.

    .venv/bin/python benchmarks/bench_dedup.py [--sizes 20000 80000] [--threshold 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from remoteclip.dedup import brute_pairs_within, pairs_within


def hashes_with_duplicates(n: int, rng: np.random.Generator) -> np.ndarray:
    """Random 64-bit hashes with 1 % near-duplicates (0-2 bits flipped)."""
    h = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, n, dtype=np.uint64)
    for i in rng.choice(n, n // 100, replace=False):
        j = int(rng.integers(n))
        flips = rng.choice(64, rng.integers(0, 3), replace=False)
        h[j] = h[i] ^ np.uint64(sum(1 << int(b) for b in flips))
    return h


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[20000, 80000])
    ap.add_argument("--threshold", type=int, default=2)
    args = ap.parse_args()
    d = args.threshold - 1
    rows = []
    for n in args.sizes:
        h = hashes_with_duplicates(n, np.random.default_rng(n))
        t_block, fast = timed(lambda h=h: pairs_within(h, d))
        t_brute, slow = timed(lambda h=h: brute_pairs_within(h, d))
        assert np.array_equal(fast, slow)
        rows.append((n, t_block, t_brute, len(fast)))
        print(
            f"n={n:6d}  block search {t_block:7.3f} s   brute force {t_brute:7.3f} s   "
            f"speed-up x{t_brute / t_block:6.1f}   pairs {len(fast)}"
        )
    if len(rows) >= 2:
        (n0, b0, f0, _), (n1, b1, f1, _) = rows[0], rows[-1]
        print(
            f"growth {n0} -> {n1} (x{n1 / n0:.0f} hashes): block x{b1 / b0:.1f}, brute x{f1 / f0:.1f} "
            f"(linear would be x{n1 / n0:.0f}, quadratic x{(n1 / n0) ** 2:.0f})"
        )


if __name__ == "__main__":
    main()
