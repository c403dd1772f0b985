"""Rule `plan_shards`: results/captions/{dataset}.jsonl -> the chunks of that source under one
set of shard settings, results/shards/sources/{dataset}/{settings}/plan.json (a checkpoint)."""

from pathlib import Path

from remoteclip.logs import rule_log
from remoteclip.shards import ShardSettings
from remoteclip.shards.plan import plan_source, write_plan
from remoteclip.super_resolution import check as check_super_resolution

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]) as log:
    settings = ShardSettings(**sm.params.settings)
    check_super_resolution(settings.super_resolution)  # before a chunk job meets it
    plan = plan_source(sm.input.captions, sm.wildcards.dataset, settings)
    write_plan(plan, Path(sm.output.plan).parent)
    log.info("%s: %d rows in %d chunks (%s)", sm.wildcards.dataset, plan["rows"], len(plan["chunks"]), plan["key"])
