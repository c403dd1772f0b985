# pHash de-duplication: hashes cached per dataset, then per run the training-set and
# test-leak filter (results/dedup/{run}/removed.tsv is the leakage audit). A test split's
# hashes are those of the images its split file lists (rule eval_split, evaluate.smk), so
# what is protected is exactly what evaluation scores. The hash rules keep what they hashed
# in results/dedup/cache/ (not an output, so it survives a failed job): a rerun or a resumed
# job hashes only new or changed images.


rule hash_training_source:
    input:
        captions="results/captions/{dataset}.jsonl",
    output:
        hashes="results/dedup/hashes/{dataset}.train.tsv",
    log:
        "results/logs/dedup/hash_{dataset}.train.log",
    conda:
        "../../envs/data.yaml"
    threads: config["dedup"]["workers"]
    params:
        hash_size=config["dedup"]["hash_size"],
        cache="results/dedup/cache/{dataset}.train.tsv",
    script:
        "../../scripts/hash_images.py"


rule hash_test_split:
    input:
        split="results/splits/{dataset}.json",
    output:
        hashes="results/dedup/hashes/{dataset}.test.tsv",
    log:
        "results/logs/dedup/hash_{dataset}.test.log",
    conda:
        "../../envs/data.yaml"
    threads: config["dedup"]["workers"]
    params:
        hash_size=config["dedup"]["hash_size"],
        cache="results/dedup/cache/{dataset}.test.tsv",
    script:
        "../../scripts/hash_images.py"


rule dedup:
    input:
        train=lambda w: expand("results/dedup/hashes/{d}.train.tsv", d=sources_of(w.run)),
        tests=expand("results/dedup/hashes/{d}.test.tsv", d=testsets()),
    output:
        removed="results/dedup/{run}/removed.tsv",
        summary="results/dedup/{run}/summary.json",
    log:
        "results/logs/dedup/{run}.log",
    conda:
        "../../envs/data.yaml"
    threads: config["dedup"]["workers"]
    params:
        sources=lambda w: sources_of(w.run),
        testsets=testsets(),
        threshold=config["dedup"]["threshold"],
        leak_threshold=config["dedup"]["leak_threshold"],
        blocks=config["dedup"]["blocks"],
        bits=config["dedup"]["hash_size"] ** 2,
    script:
        "../../scripts/dedup.py"
