# WebDataset shards per source chunk, shared by every run that uses the source
# (remoteclip.shards): plan_shards cuts a caption file into chunks (a checkpoint: how many is
# known once the captions exist), build_shards encodes one chunk, shard_manifest lists a run's
# chunks minus what its de-duplication removed. The settings keys and a run's chunk files:
# common.smk.


checkpoint plan_shards:
    input:
        captions="results/captions/{dataset}.jsonl",
    output:
        plan="results/shards/sources/{dataset}/{settings}/plan.json",
    log:
        "results/logs/plan_shards/{dataset}/{settings}.log",
    wildcard_constraints:
        settings=wildcard_regex(sorted(SHARD_SETTINGS)),
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda w: dataclasses.asdict(SHARD_SETTINGS[w.settings]),
    script:
        "../../scripts/plan_shards.py"


# ancient(): a chunk is rebuilt when its rows change, which changes its name (the digest), not
# when the caption file or the plan is merely rewritten (the same rows keep their chunk)
rule build_shards:
    input:
        captions=ancient("results/captions/{dataset}.jsonl"),
        plan=ancient("results/shards/sources/{dataset}/{settings}/plan.json"),
    output:
        shard="results/shards/sources/{dataset}/{settings}/{chunk}-{digest}.tar",
        index="results/shards/sources/{dataset}/{settings}/{chunk}-{digest}.idx.npy",
        record="results/shards/sources/{dataset}/{settings}/{chunk}-{digest}.json",
    log:
        "results/logs/build_shards/{dataset}/{settings}/{chunk}-{digest}.log",
    wildcard_constraints:
        settings=wildcard_regex(sorted(SHARD_SETTINGS)),
        chunk=r"\d{6}",
        digest=r"[0-9a-f]{16}",
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda w: dataclasses.asdict(SHARD_SETTINGS[w.settings]),
    script:
        "../../scripts/build_shards.py"


rule shard_manifest:
    input:
        chunks=run_chunk_files,
        plans=lambda w: [source_plan(d, SHARD_KEY[w.run]) for d in sources_of(w.run)],
        removed="results/dedup/{run}/removed.tsv",
    output:
        directory("results/shards/{run}"),
    log:
        "results/logs/shard_manifest/{run}.log",
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda w: run_shard_settings(w.run).identity() | {"key": SHARD_KEY[w.run]},
        licences=lambda w: run_licences(w.run),
    script:
        "../../scripts/shard_manifest.py"
