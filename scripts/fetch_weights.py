"""Rule `fetch_weights`: download one pretrained weight source into the weights cache, verify
it and write its manifest <weights>/.fetched/{key}.json (remoteclip.weights.cache)."""

from remoteclip.logs import rule_log
from remoteclip.weights.fetch import fetch

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]) as log:
    manifest = fetch(sm.params.source, sm.params.cache, sm.params.lock)
    for record in manifest["files"]:
        log.info(
            "%s: %s (%d bytes, sha256 %s, %s)",
            manifest["source"],
            record["path"],
            record["size"],
            record["sha256"],
            record["verified_by"],
        )
