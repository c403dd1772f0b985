"""Exact Hamming-radius search over 64-bit hashes: multi-index hashing with sub-radius
enumeration (Norouzi, Punjani and Fleet, "Fast Search in Hamming Space with Multi-Index
Hashing", CVPR 2012), written here in numpy. faiss's IndexBinaryMultiHash is the same idea, but
it is exact only when its `nhash` tables of `b` bits cover the whole code and `nflip` reaches
the sub-radius (read in faiss/IndexBinaryHash.cpp: the caller picks all three), it probes every
table at the same radius, and it gathers each query's candidates in a C++ hash set: on this
project's machine it was slower than faiss's own exact scan (benchmarks/bench_dedup.py).

Why it is exact: split the hash into m disjoint substrings and write the radius as
r = s * m + a (0 <= a < m). If two hashes differ in at most r bits, then one of a + 1 chosen
substrings differs in at most s bits or one of the other m - a - 1 in at most s - 1 bits
(otherwise they would differ in at least (a + 1)(s + 1) + (m - a - 1) s = r + 1 bits). So
probing every substring's table with all values within its own radius of the query's
substring finds every pair brute force finds; each candidate is then checked on the whole
hash. A pair found through more than one substring is kept only for the first substring
that finds it, so every pair comes out once.

Cost: per query, `probes` table look-ups (the number of substring values within the
radii) and about `n * candidates` full comparisons (the chance that a random hash falls in
a probed bucket); `plan` picks the number of substrings that minimises their sum for the
sizes at hand. Equal hashes (video frames, blank tiles) are searched once per distinct
value and expanded afterwards, so m copies of one hash never cost m x m comparisons.
Memory: the index side is searched in chunks of at most `CHUNK` distinct hashes and the
queries in blocks sized to bound the probe and candidate arrays, so a search holds a few
hundred MB however large its input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Distinct hashes indexed at once (their tables take ~30 bytes each beyond the input).
CHUNK = 1 << 23
# Substrings up to this wide are looked up in a table indexed by the substring's value;
# wider ones by binary search in their sorted values (a table would need 2^width entries).
_DIRECT_BITS = 24
# Probe and candidate cells held at once by one block of queries.
_CELLS_PER_BLOCK = 1 << 18
# More probes per query than this is a split chosen by hand that would run for hours.
MAX_PROBES = 1 << 20
# Relative costs (measured on this project's machine, ns): a probe is a random table read,
# a candidate a gather and a popcount, a table entry a bincount and cumsum step, an indexed
# hash one argsort step.
_COST_PROBE, _COST_CANDIDATE, _COST_TABLE_ENTRY, _COST_INDEXED = 50.0, 50.0, 2.0, 100.0


@dataclass(frozen=True)
class Substring:
    """Bits [shift, shift + width) of the hash, probed within `radius` bits (-1: not probed)."""

    shift: int
    width: int
    radius: int

    @property
    def mask(self) -> np.uint64:
        return np.uint64((1 << self.width) - 1)

    def values(self, hashes: np.ndarray) -> np.ndarray:
        return (hashes >> np.uint64(self.shift)) & self.mask


def substrings(bits: int, blocks: int, max_distance: int, larger_radius_on: str = "narrowest") -> list[Substring]:
    """`blocks` contiguous substrings of near-equal width with the radii that keep the search
    exact: a + 1 of them at s and the rest at s - 1, where max_distance = s * blocks + a."""
    if not 1 <= blocks <= bits:
        raise ValueError(f"the hash of {bits} bits cannot be split into {blocks} substrings (1 to {bits})")
    widths = [bits // blocks + (1 if i < bits % blocks else 0) for i in range(blocks)]
    shifts = [sum(widths[:i]) for i in range(blocks)]
    s, a = divmod(max_distance, blocks)
    by_width = sorted(range(blocks), key=lambda i: widths[i], reverse=larger_radius_on == "widest")
    radius = [s - 1] * blocks
    for i in by_width[: a + 1]:
        radius[i] = s
    return [Substring(shifts[i], widths[i], radius[i]) for i in range(blocks)]


def ball(width: int, radius: int) -> int:
    """How many width-bit values lie within `radius` bits of a given one."""
    return sum(math.comb(width, k) for k in range(max(radius, -1) + 1))


def cost(subs: list[Substring], indexed: int, queries: int) -> float:
    """Estimated time (ns) of searching `queries` hashes against `indexed` uniform ones."""
    probed = [s for s in subs if s.radius >= 0]
    probes = sum(ball(s.width, s.radius) * (1 if s.width <= _DIRECT_BITS else math.log2(indexed + 2)) for s in probed)
    candidates = indexed * sum(ball(s.width, s.radius) / 2.0**s.width for s in probed)
    tables = sum(2.0**s.width for s in probed if s.width <= _DIRECT_BITS)
    return (
        queries * (_COST_PROBE * probes + _COST_CANDIDATE * candidates)
        + _COST_TABLE_ENTRY * tables
        + _COST_INDEXED * indexed * len(probed)
    )


def plan(indexed: int, queries: int, max_distance: int, bits: int = 64, blocks: int | None = None) -> list[Substring]:
    """The substrings to search with: `blocks` of them when given, otherwise the cheapest split
    by `cost` (every split is exact; only the time differs)."""
    choices = [blocks] if blocks else range(1, min(bits, max_distance + 2, 16) + 1)
    options = [substrings(bits, m, max_distance, side) for m in choices for side in ("narrowest", "widest")]
    best = min(options, key=lambda subs: cost(subs, max(indexed, 1), max(queries, 1)))
    probes = sum(ball(s.width, s.radius) for s in best)
    if probes > MAX_PROBES:
        raise ValueError(
            f"{blocks} hash blocks would probe {probes:,} substring values per hash at distance "
            f"{max_distance}; use more blocks or none (null: the cheapest split)"
        )
    return best


@lru_cache(maxsize=64)
def flip_masks(width: int, radius: int) -> np.ndarray:
    """Every width-bit value with at most `radius` one bits (what a probe XORs in), read-only."""
    levels, highest = [np.zeros(1, np.uint64)], [np.full(1, -1, np.int64)]
    for _ in range(radius):
        prev, top = levels[-1], highest[-1]
        # extend each mask of the previous level by a bit above its highest one: each set once
        grown = [(prev[top < b] | np.uint64(1 << b), b) for b in range(width)]
        levels.append(np.concatenate([g for g, _ in grown]))
        highest.append(np.concatenate([np.full(len(g), b, np.int64) for g, b in grown]))
    masks = np.concatenate(levels)
    masks.flags.writeable = False
    return masks


class _Table:
    """One substring over the indexed hashes: their positions sorted by the substring's value
    and, for each value, where its run starts (a direct table, or binary search when wide)."""

    def __init__(self, sub: Substring, hashes: np.ndarray):
        self.sub = sub
        values = sub.values(hashes)
        if sub.width <= _DIRECT_BITS:
            # sort (value, position) packed into one integer: a plain sort is about twice as
            # fast as an argsort, and positions of one value need no particular order
            shift = np.uint64(max(1, len(hashes) - 1).bit_length())
            packed = np.sort((values << shift) | np.arange(len(hashes), dtype=np.uint64))
            self.order = (packed & np.uint64((1 << int(shift)) - 1)).astype(np.int64)
            self.starts = np.zeros((1 << sub.width) + 1, np.int64)
            np.cumsum(np.bincount(values, minlength=1 << sub.width), out=self.starts[1:])
            self.sorted_values = None
        else:
            self.order = np.argsort(values, kind="stable")
            self.sorted_values = values[self.order]
        self.sorted_hashes = hashes[self.order]  # read in bucket order: no gather through `order`

    def runs(self, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first position, count) of the indexed hashes whose substring equals each probe."""
        if self.sorted_values is None:
            lo = self.starts[probes]
            return lo, self.starts[probes + 1] - lo
        lo = np.searchsorted(self.sorted_values, probes, "left")
        return lo, np.searchsorted(self.sorted_values, probes, "right") - lo


class MultiIndex:
    """Indexed hashes (distinct values) searched with `query` for all within max_distance."""

    def __init__(self, hashes: np.ndarray, max_distance: int, subs: list[Substring]):
        self.hashes, self.max_distance, self.subs = hashes, max_distance, subs
        self.tables = [_Table(s, hashes) for s in subs if s.radius >= 0]
        self.probes_per_query = sum(len(flip_masks(t.sub.width, t.sub.radius)) for t in self.tables)
        self.candidates_per_query = len(hashes) * sum(
            ball(t.sub.width, t.sub.radius) / 2.0**t.sub.width for t in self.tables
        )

    def block_size(self) -> int:
        """Queries per block so that its probe and expected candidate arrays stay bounded."""
        per_query = self.probes_per_query + self.candidates_per_query
        return int(max(1, min(1 << 16, _CELLS_PER_BLOCK // max(per_query, 1))))

    def query(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(indexed position, query position) of every pair within max_distance, each once."""
        found_at, found_by = [], []
        for k, table in enumerate(self.tables):
            at, by = self._probe(table, queries)
            if k and len(at):
                first = self._found_earlier(self.hashes[at] ^ queries[by], k)
                at, by = at[~first], by[~first]
            found_at.append(at)
            found_by.append(by)
        return np.concatenate(found_at), np.concatenate(found_by)

    def _probe(self, table: _Table, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        masks = flip_masks(table.sub.width, table.sub.radius)
        probes = (table.sub.values(queries)[:, None] ^ masks[None, :]).ravel()
        lo, count = table.runs(probes)
        ends = np.cumsum(count)
        total = int(ends[-1])
        if not total:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        # positions of every candidate: each run's first position plus 0, 1, ... count - 1
        positions = np.arange(total, dtype=np.int64) + np.repeat(lo - (ends - count), count)
        per_query = count.reshape(len(queries), len(masks)).sum(1)
        close = np.bitwise_count(table.sorted_hashes[positions] ^ np.repeat(queries, per_query))
        keep = np.flatnonzero(close <= self.max_distance)
        return table.order[positions[keep]], np.searchsorted(np.cumsum(per_query), keep, "right")

    def _found_earlier(self, differences: np.ndarray, k: int) -> np.ndarray:
        """Which pairs (their XOR) an earlier table already reports: within its radius there."""
        earlier = np.zeros(len(differences), bool)
        for table in self.tables[:k]:
            s = table.sub
            earlier |= np.bitwise_count((differences >> np.uint64(s.shift)) & s.mask) <= s.radius
        return earlier


def _map_blocks(fn: Callable, blocks: list, workers: int) -> list:
    """fn over blocks in order, in `workers` threads (numpy's gathers and popcounts release the GIL)."""
    if workers <= 1 or len(blocks) <= 1:
        return [fn(b) for b in blocks]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, blocks))


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(n, start + size)


def distinct_pairs_across(
    index: np.ndarray, queries: np.ndarray, max_distance: int, bits: int, blocks: int | None, workers: int
) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with index[i] and queries[j] within max_distance, for hashes without repeats."""
    subs = plan(min(len(index), CHUNK), len(queries), max_distance, bits, blocks)
    found_i, found_j = [], []
    for start, end in _chunks(len(index), CHUNK):
        mi = MultiIndex(index[start:end], max_distance, subs)
        spans = list(_chunks(len(queries), mi.block_size()))

        def search(span, mi=mi):
            return mi.query(queries[span[0] : span[1]])

        for (q0, _), (at, by) in zip(spans, _map_blocks(search, spans, workers)):
            found_i.append(at + start)
            found_j.append(by + q0)
    return _concat(found_i), _concat(found_j)


def distinct_pairs_within(
    hashes: np.ndarray, max_distance: int, bits: int, blocks: int | None, workers: int
) -> tuple[np.ndarray, np.ndarray]:
    """(i, j), i < j, of distinct hashes within max_distance: each chunk is indexed and
    searched by the hashes from its own start on, so every pair is found in one chunk."""
    found_i, found_j = [], []
    for start, end in _chunks(len(hashes), CHUNK):
        subs = plan(end - start, len(hashes) - start, max_distance, bits, blocks)
        mi = MultiIndex(hashes[start:end], max_distance, subs)
        spans = list(_chunks(len(hashes) - start, mi.block_size()))

        def search(span, mi=mi, start=start):
            at, by = mi.query(hashes[start + span[0] : start + span[1]])
            at, by = at + start, by + start + span[0]
            later = by > at
            return at[later], by[later]

        for at, by in _map_blocks(search, spans, workers):
            found_i.append(at)
            found_j.append(by)
    return _concat(found_i), _concat(found_j)


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


class _Groups:
    """Positions of the hashes sharing each distinct value: unique values, and for value u its
    members members[starts[u]:starts[u + 1]] in increasing position."""

    def __init__(self, hashes: np.ndarray):
        self.members = np.argsort(hashes, kind="stable")  # one sort: members in position order
        ordered = hashes[self.members]
        first = np.concatenate([[True], ordered[1:] != ordered[:-1]]) if len(hashes) else np.empty(0, bool)
        self.values = ordered[first]
        self.starts = np.append(np.flatnonzero(first), len(hashes))
        self.counts = np.diff(self.starts)
        self.inverse = np.empty(len(hashes), np.int64)
        self.inverse[self.members] = np.cumsum(first) - 1

    def expand(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index into u, member position) for every member of each u."""
        sizes = self.counts[u]
        owner = np.repeat(np.arange(len(u)), sizes)
        ends = np.cumsum(sizes)
        offset = np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - sizes, sizes)
        return owner, self.members[np.repeat(self.starts[u], sizes) + offset]


def _cross(left: _Groups, right: _Groups, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (member of left value a[k], member of right value b[k])."""
    k, i = left.expand(a)
    kk, j = right.expand(b[k])
    return i[kk], j


def _sorted_pairs(i: np.ndarray, j: np.ndarray, columns: int) -> np.ndarray:
    """(k, 2) rows in (i, j) order; packed into one int64 because sorting rows as records is
    about ten times slower."""
    packed = np.sort(i.astype(np.int64) * columns + j)
    return np.stack([packed // columns, packed % columns], 1) if len(packed) else np.empty((0, 2), np.int64)


def pairs_across(
    left: np.ndarray,
    right: np.ndarray,
    max_distance: int,
    blocks: int | None = None,
    bits: int = 64,
    workers: int = 1,
) -> np.ndarray:
    """All (i, j) with left[i] and right[j] within max_distance, sorted: exactly brute force's
    pairs. The larger side is indexed (in chunks), the smaller one queries it."""
    left, right = np.asarray(left, np.uint64), np.asarray(right, np.uint64)
    if not len(left) or not len(right):
        return np.empty((0, 2), np.int64)
    lg, rg = _Groups(left), _Groups(right)
    if len(lg.values) >= len(rg.values):
        a, b = distinct_pairs_across(lg.values, rg.values, max_distance, bits, blocks, workers)
    else:
        b, a = distinct_pairs_across(rg.values, lg.values, max_distance, bits, blocks, workers)
    i, j = _cross(lg, rg, a, b)
    return _sorted_pairs(i, j, len(right))


def pairs_within(
    hashes: np.ndarray, max_distance: int, blocks: int | None = None, bits: int = 64, workers: int = 1
) -> np.ndarray:
    """All (i, j), i < j, with Hamming distance <= max_distance, sorted: exactly brute force's
    pairs, equal hashes included (every pair of copies of one value)."""
    hashes = np.asarray(hashes, np.uint64)
    if len(hashes) < 2:
        return np.empty((0, 2), np.int64)
    groups = _Groups(hashes)
    a, b = distinct_pairs_within(groups.values, max_distance, bits, blocks, workers)
    i, j = _cross(groups, groups, a, b)
    same_i, same_j = _pairs_of_copies(groups)
    i, j = np.concatenate([i, same_i]), np.concatenate([j, same_j])
    return _sorted_pairs(np.minimum(i, j), np.maximum(i, j), len(hashes))


def _pairs_of_copies(groups: _Groups) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of members of each repeated value, each pair once: values with the same
    number of copies c share one upper triangle of a c x c grid."""
    found_i, found_j = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for c in np.unique(groups.counts[groups.counts > 1]).tolist():
        first, second = np.triu_indices(c, 1)
        rows = groups.starts[:-1][groups.counts == c][:, None] + np.arange(c)  # member slots per value
        found_i.append(groups.members[rows[:, first]].ravel())
        found_j.append(groups.members[rows[:, second]].ravel())
    return np.concatenate(found_i), np.concatenate(found_j)


def brute_pairs_within(hashes: np.ndarray, max_distance: int, chunk: int = 2048) -> np.ndarray:
    """Reference: every pair compared (vectorised XOR and popcount)."""
    hashes = np.asarray(hashes, np.uint64)
    out = [np.empty((0, 2), np.int64)]
    for start in range(0, len(hashes), chunk):
        d = np.bitwise_count(hashes[start : start + chunk, None] ^ hashes[None, :])
        i, j = np.nonzero(d <= max_distance)
        i = i + start
        keep = i < j
        out.append(np.stack([i[keep], j[keep]], 1))
    return np.concatenate(out)


def brute_pairs_across(left: np.ndarray, right: np.ndarray, max_distance: int, chunk: int = 2048) -> np.ndarray:
    """Reference: every (left, right) pair compared, rows in (i, j) order."""
    left, right = np.asarray(left, np.uint64), np.asarray(right, np.uint64)
    out = [np.empty((0, 2), np.int64)]
    step = max(1, (chunk * chunk) // max(len(right), 1))
    for start in range(0, len(left), step):
        i, j = np.nonzero(np.bitwise_count(left[start : start + step, None] ^ right[None, :]) <= max_distance)
        out.append(np.stack([i + start, j], 1))
    return np.concatenate(out)


def duplicate_groups(
    hashes: np.ndarray, max_distance: int, blocks: int | None = None, bits: int = 64, workers: int = 1
) -> np.ndarray:
    """Component label of every hash: hashes joined by any chain of pairs within max_distance.

    Equal hashes are one node of the graph, so m copies of one hash cost m, not m x m pairs;
    the pairs between distinct values go into scipy's connected components. Labels are the
    smallest member index.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    hashes = np.asarray(hashes, np.uint64)
    if len(hashes) == 0:
        return np.empty(0, np.int64)
    groups = _Groups(hashes)
    a, b = distinct_pairs_within(groups.values, max_distance, bits, blocks, workers)
    n = len(groups.values)
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    label = component[groups.inverse]
    smallest = np.full(label.max() + 1, len(hashes), np.int64)
    np.minimum.at(smallest, label, np.arange(len(hashes)))
    return smallest[label]
