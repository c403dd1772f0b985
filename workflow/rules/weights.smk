# Pretrained weights: every weight the runs and evaluation models download (open_clip tags,
# hf-hub: models, the released RemoteCLIP files) is fetched here, on the machine that runs
# Snakemake (on a cluster the login node, which has the internet), into the weights cache
# (`data.weights`); the train and features jobs read only that cache, offline.

from remoteclip.weights.cache import needed as needed_weights

WEIGHT_SOURCES = needed_weights(config, EVAL_MODELS)
WEIGHTS_LOCK = str(resolve_path(config["download"]["weights_lock"], workflow.basedir))


rule fetch_weights:
    output:
        manifest=f"{WEIGHTS}/.fetched/{{key}}.json",
    log:
        "results/logs/fetch_weights/{key}.log",
    wildcard_constraints:
        key=wildcard_regex(sorted(WEIGHT_SOURCES)),
    localrule: True
    conda:
        "../../envs/eval.yaml"
    params:
        source=lambda w: WEIGHT_SOURCES[w.key],
        cache=lambda w, output: Path(output.manifest).parents[1],  # <cache>/.fetched/<key>.json
        lock=WEIGHTS_LOCK,
    script:
        "../../scripts/fetch_weights.py"
