"""Process pools for the data stages.

Stages run as Snakemake `script:`s whose top-level code is the stage itself, so a
"spawn" child would re-run the whole stage when it re-imports `__main__`. "fork" (the
Linux default) does not re-import; these stages never touch CUDA before forking.

Used by `synthesize`, the pHash rules (`hash_training_source`, `hash_test_split`) and
`build_shards`, each with its rule's `threads` as the worker count.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def imap(fn: Callable, jobs: Iterable, workers: int, chunksize: int = 1) -> Iterator:
    """Ordered results of fn over jobs, in `workers` processes (in this one when <= 1)."""
    if workers <= 1:
        yield from map(fn, jobs)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(workers) as pool:
        yield from pool.imap(fn, jobs, chunksize=chunksize)
