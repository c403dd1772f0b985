# `snakemake dvc_track`: version the configured artifacts with DVC and push them.


rule dvc_track:
    input:
        all_targets(),
    output:
        record="results/dvc_track.json",
    params:
        dvc=config["dvc"],
    localrule: True
    conda:
        "../../envs/dvc.yaml"
    log:
        "results/logs/dvc_track.log",
    script:
        "../../scripts/dvc_track.py"
