"""Rule `shard_manifest`: the chunks of a run's sources minus results/dedup/{run}/removed.tsv ->
results/shards/{run}/ (links to the chunks, manifest.json, sizes.json)."""

from remoteclip.dedup import read_removed
from remoteclip.licences import terms_text
from remoteclip.logs import rule_log
from remoteclip.shards import write_run_manifest

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]) as log:
    manifest = write_run_manifest(
        sm.wildcards.run,
        list(sm.input.plans),
        read_removed(sm.input.removed),
        sm.output[0],
        sm.params.settings,
        sm.params.licences,
    )
    log.info(
        "%s: %d samples in %d shards (%d removed by dedup, %d unreadable)",
        sm.wildcards.run,
        manifest["total"],
        len(manifest["shards"]),
        manifest["removed_by_dedup"],
        manifest["skipped"]["total"],
    )
    for name, source in manifest["sources"].items():
        terms = terms_text(source["terms"])
        log.info("source %s: %d samples; licence: %s (%s)", name, source["samples"], source["licence"], terms)
    if manifest["licence_note"]:
        log.warning("%s: %s", sm.wildcards.run, manifest["licence_note"])
