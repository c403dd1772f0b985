"""Rule `dedup`: remove training duplicates and test-split leaks of one run (from the pHash
files in results/dedup/hashes/) -> results/dedup/{run}/removed.tsv and summary.json."""

import json

import numpy as np

from remoteclip.dedup import deduplicate_sets, read_hashes, write_removed
from remoteclip.logs import rule_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]) as log:
    keys, values = [], []
    for path in sm.input.train:
        k, v, _ = read_hashes(path)
        keys.extend(k)
        values.append(v)
    tests = {}
    for name, path in zip(sm.params.testsets, sm.input.tests):
        k, v, _ = read_hashes(path)
        tests[name] = (k, v)
    rows, summary = deduplicate_sets(
        (keys, np.concatenate(values) if values else np.empty(0, np.uint64)),
        tests,
        sm.params.threshold,
        list(sm.params.sources),
        sm.params.blocks,
        sm.params.bits,
        leak_threshold=sm.params.leak_threshold,
        workers=sm.threads,
    )
    summary["settings"] = {
        "threshold": sm.params.threshold,
        "leak_threshold": sm.params.leak_threshold,
        "rule": "training duplicate when the Hamming distance < threshold; "
        "test leak when the distance to a test image < leak_threshold",
        "hash_bits": sm.params.bits,
        "testsets": list(sm.params.testsets),
    }
    write_removed(sm.output.removed, rows)
    with open(sm.output.summary, "w") as fh:
        json.dump(summary, fh, indent=1)
    t = summary["thresholds"]
    log.info(
        "%s: %d of %d training images removed: %d training duplicates (distance < %d), %d test leaks "
        "(distance < %d; %d of them below %d)",
        sm.wildcards.run,
        summary["removed"],
        summary["images"],
        t["training_duplicates"]["removed"],
        t["training_duplicates"]["threshold"],
        t["test_leaks"]["removed"],
        t["test_leaks"]["threshold"],
        t["test_leaks"]["below_duplicate_threshold"],
        t["training_duplicates"]["threshold"],
    )
    for source, counts in summary["audit"].items():
        others = {o: n for o, n in counts["duplicates_of"].items() if o != source}
        leaks = {b: v["images"] for b, v in counts["test_leaks"].items() if v["images"]}
        log.info(
            "%s: %d of %d images removed; duplicates of other sources %s; images in benchmark test splits %s",
            source,
            counts["removed"],
            counts["images"],
            others or "none",
            leaks or "none",
        )
