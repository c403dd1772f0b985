# WebDataset shards of each run's de-duplicated training set.


rule build_shards:
    input:
        captions=lambda w: expand("results/captions/{d}.jsonl", d=sources_of(w.run)),
        removed="results/dedup/{run}/removed.tsv",
    output:
        directory("results/shards/{run}"),
    params:
        settings=config["shards"],
        seed=config["seed"],
    threads: workflow.cores
    conda:
        "../../envs/data.yaml"
    log:
        "results/logs/build_shards/{run}.log",
    script:
        "../../scripts/build_shards.py"
