"""Rule `build_shards`: the run's caption files minus results/dedup/{run}/removed.tsv ->
results/shards/{run}/ (WebDataset tars, manifest.json, sizes.json)."""

from remoteclip.dedup import read_removed
from remoteclip.logs import rule_log
from remoteclip.shards import ShardSettings, build_shards, read_caption_rows

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]) as log:
    removed = read_removed(sm.input.removed)
    rows, dropped = read_caption_rows(list(sm.input.captions), removed)
    settings = ShardSettings(seed=sm.params.seed, workers=sm.threads, **sm.params.settings)
    manifest = build_shards(rows, sm.output[0], settings, run=sm.wildcards.run, removed=dropped)
    log.info(
        "%s: %d samples in %d shards (%d removed by dedup, %d unreadable)",
        sm.wildcards.run,
        manifest["total"],
        len(manifest["shards"]),
        dropped,
        manifest["skipped"]["total"],
    )
