"""Rules `hash_training_source` / `hash_test_split`: 64-bit pHash of every image (cached per
dataset), results/dedup/hashes/{dataset}.train.tsv / {dataset}.test.tsv.

A test split's images are the ones its split file (results/splits/<benchmark>.json, rule
`eval_split`) says are scored, so de-duplication protects exactly what evaluation scores."""

import json

from remoteclip.dedup import hash_items, write_hashes
from remoteclip.evaluate.scored import protected_regions
from remoteclip.logs import rule_log
from remoteclip.shards import sample_key

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]):
    if "captions" in sm.input.keys():
        with open(sm.input.captions) as fh:
            rows = [json.loads(line) for line in fh]
        items = [(sample_key(r), r["image"], tuple(r["crop"]) if r.get("crop") else None) for r in rows]
    else:
        with open(sm.input.split) as fh:
            items = protected_regions(json.load(fh))
    hashes, failures = hash_items(items, sm.params.hash_size, sm.threads, desc=f"phash {sm.wildcards.dataset}")
    write_hashes(sm.output.hashes, hashes, failures, sm.params.hash_size**2)
