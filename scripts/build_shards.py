"""Rule `build_shards`: one chunk of a source's caption rows -> its WebDataset tar, member index
and record in results/shards/sources/{dataset}/{settings}/ (remoteclip.shards.encode)."""

from pathlib import Path

from remoteclip.logs import rule_log
from remoteclip.shards import ShardSettings
from remoteclip.shards.build import build_chunk
from remoteclip.shards.plan import read_plan

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]) as log:
    stem = Path(sm.output.shard).with_suffix("")
    record = build_chunk(
        sm.input.captions,
        read_plan(sm.input.plan),
        int(sm.wildcards.chunk),
        sm.wildcards.digest,
        stem,
        ShardSettings(**sm.params.settings),
    )
    log.info(
        "%s: %d samples of %d rows (%d unreadable)",
        stem.name,
        len(record["samples"]),
        record["rows"],
        len(record["skipped"]),
    )
