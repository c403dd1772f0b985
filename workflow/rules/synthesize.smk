# The synthetic demo world: renders datasets in the real formats of the paper's sources.


rule synthesize:
    output:
        marker=f"{DATA}/raw/{{dataset}}/.verified",
    params:
        dataset=dataset_params,
        defaults=config["synthetic"],
        seed=config["seed"],
    wildcard_constraints:
        dataset=wildcard_regex(SYNTHETIC),
    threads: config["synthetic"]["workers"]
    conda:
        "../../envs/data.yaml"
    log:
        "results/logs/synthesize/{dataset}.log",
    script:
        "../../scripts/synthesize.py"
