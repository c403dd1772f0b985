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
        # the run's super-resolution step joins the settings only where configured, so the
        # other runs' parameters (and Snakemake's rerun decisions) are as before
        settings=lambda w: config["shards"]
        | (
            {"super_resolution": config["runs"][w.run]["super_resolution"]}
            if "super_resolution" in config["runs"][w.run]
            else {}
        ),
        seed=config["seed"],
    script:
        "../../scripts/build_shards.py"
