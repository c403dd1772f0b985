"""pHash de-duplication inside a run's training set and against evaluation test splits
(paper §III-B-3: 64-bit p-Hash, "blockwise local detection", duplicate when the Hamming
distance is below 2).

Test leaks have a threshold of their own, `dedup.leak_threshold` (default 10): the paper's 2
means an identical hash and lets rescaled or re-encoded copies through (README, "De-duplication").

Modules: `hashes` (the pHash of every image, streamed and resumable), `cache` (hashes kept by
image identity and hash settings across runs and failures), `search` (exact Hamming-radius
search: multi-index hashing, sub-quadratic at every threshold), `removal` (what a run removes
and the leakage audit), `audit` (per training source: removed as duplicates of which source,
test leaks per benchmark).

Rules and files: `hash_training_source` (results/captions/{dataset}.jsonl) and `hash_test_split`
(a benchmark's test images) write results/dedup/hashes/{dataset}.train.tsv / .test.tsv, one
`key<TAB>phash` row per image (hex; `!reason` for an image that could not be hashed), keeping
what they hashed in results/dedup/cache/. `dedup` reads the run's training hashes and every
protected test split and writes results/dedup/{run}/removed.tsv (`image`, `collides_with`,
`distance`, `reason`: the leakage audit) and summary.json (counts per source, per pair of
datasets and per threshold, and the per-source `audit`); `build_shards` leaves the removed images out.
"""

from .cache import HashCache
from .hashes import (
    HASH_SIZE,
    HashItem,
    caption_items,
    count_lines,
    hash_items,
    hash_settings,
    hash_source,
    phash,
    read_hashes,
    write_hashes,
)
from .removal import (
    check_threshold,
    deduplicate,
    deduplicate_sets,
    hamming,
    read_removed,
    summarize,
    write_removed,
)
from .search import (
    brute_pairs_across,
    brute_pairs_within,
    duplicate_groups,
    pairs_across,
    pairs_within,
    plan,
)

__all__ = [
    "HASH_SIZE",
    "HashCache",
    "HashItem",
    "brute_pairs_across",
    "brute_pairs_within",
    "caption_items",
    "check_threshold",
    "count_lines",
    "deduplicate",
    "deduplicate_sets",
    "duplicate_groups",
    "hamming",
    "hash_items",
    "hash_settings",
    "hash_source",
    "pairs_across",
    "pairs_within",
    "phash",
    "plan",
    "read_hashes",
    "read_removed",
    "summarize",
    "write_hashes",
    "write_removed",
]
