# The synthetic demo world: renders datasets in the real formats of the paper's sources.


rule synthesize:
    output:
        marker=f"{DATA}/raw/{{dataset}}/.verified",
    log:
        "results/logs/synthesize/{dataset}.log",
    wildcard_constraints:
        dataset=wildcard_regex(SYNTHETIC),
    conda:
        "../../envs/data.yaml"
    threads: config["synthetic"]["workers"]
    params:
        dataset=dataset_params,
        copies=lambda w: copy_sources(config["datasets"], w.dataset),
        defaults=config["synthetic"],
        seed=config["seed"],
    script:
        "../../scripts/synthesize.py"
