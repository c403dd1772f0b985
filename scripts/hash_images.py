"""Rules `hash_training_source` / `hash_test_split`: 64-bit pHash of every image (cached per
dataset), results/dedup/hashes/{dataset}.train.tsv / {dataset}.test.tsv, streamed and resumable
(results/dedup/cache/ keeps what was hashed across failures and reruns).

A test split's images are the ones its split file (results/splits/<benchmark>.json, rule
`eval_split`) says are scored, so de-duplication protects exactly what evaluation scores."""

import json
from collections.abc import Iterable

from remoteclip.dedup import caption_items, count_lines, hash_source
from remoteclip.evaluate.scored import protected_regions
from remoteclip.logs import rule_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]) as log:
    if "captions" in sm.input.keys():
        items: Iterable = caption_items(sm.input.captions)
        total = count_lines(sm.input.captions)
    else:
        with open(sm.input.split) as fh:
            regions = protected_regions(json.load(fh))
        items, total = regions, len(regions)
    counts = hash_source(
        items,
        sm.output.hashes,
        sm.params.cache,
        sm.params.hash_size,
        sm.threads,
        total=total,
        desc=f"phash {sm.wildcards.dataset}",
    )
    log.info(
        "%s: %d images: %d hashed, %d from the cache (%s), %d could not be hashed",
        sm.wildcards.dataset,
        counts["rows"],
        counts["hashed"],
        counts["cached"],
        sm.params.cache,
        counts["failed"],
    )
