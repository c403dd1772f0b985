# `snakemake dvc_track`: version the configured artifacts with DVC and push them.


rule dvc_track:
    input:
        all_targets(),
    output:
        record="results/dvc_track.json",
    log:
        "results/logs/dvc_track.log",
    localrule: True
    conda:
        "../../envs/dvc.yaml"
    params:
        dvc=config["dvc"],
    script:
        "../../scripts/dvc_track.py"
