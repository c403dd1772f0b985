"""Rule `dedup`: remove training duplicates and test-split leaks of one run."""

import json

from remoteclip.dedup import deduplicate, read_hashes, write_removed
from remoteclip.logs import rule_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]) as log:
    train = {}
    for path in sm.input.train:
        keys, values, _ = read_hashes(path)
        train.update(zip(keys, values.tolist()))
    tests = {}
    for name, path in zip(sm.params.testsets, sm.input.tests):
        keys, values, _ = read_hashes(path)
        tests[name] = dict(zip(keys, values.tolist()))
    rows, summary = deduplicate(train, tests, sm.params.threshold, list(sm.params.sources), sm.params.blocks,
                                sm.params.bits)
    summary["settings"] = {"threshold": sm.params.threshold, "rule": "duplicate when Hamming distance < threshold",
                           "hash_bits": sm.params.bits, "testsets": list(sm.params.testsets)}
    write_removed(sm.output.removed, rows)
    with open(sm.output.summary, "w") as fh:
        json.dump(summary, fh, indent=1)
    log.info("%s: %d of %d training images removed", sm.wildcards.run, summary["removed"], summary["images"])
