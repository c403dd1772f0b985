# WebDataset shards of each run's de-duplicated training set.


rule build_shards:
    input:
        captions=lambda w: expand("results/captions/{d}.jsonl", d=sources_of(w.run)),
        removed="results/dedup/{run}/removed.tsv",
    output:
        directory("results/shards/{run}"),
    log:
        "results/logs/build_shards/{run}.log",
    conda:
        "../../envs/data.yaml"
    threads: workflow.cores
    params:
        settings=config["shards"],
        seed=config["seed"],
    script:
        "../../scripts/build_shards.py"
