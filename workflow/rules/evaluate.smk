# Evaluation: split files per benchmark, image features once per (model, benchmark) and text
# features once per (model and prompt protocol, benchmark), then every task on the cached
# features, and one summary CSV.

from remoteclip.evaluate.registry import reads_train_images

# zero-shot alone reads a classification benchmark's test images only: embed those alone
TEST_IMAGES_ONLY = not reads_train_images(EVAL["tasks"])


wildcard_constraints:
    model=wildcard_regex(sorted(EVAL_MODELS)),
    benchmark=wildcard_regex(SPLIT_BENCHMARKS),
    task="|".join(sorted({t for ts in TASKS_BY_GROUP.values() for t in ts})),


# also for the test splits de-duplication protects, when they are not scored (hash_test_split)
rule eval_split:
    input:
        marker=lambda w: marker(w.benchmark),
    output:
        split="results/splits/{benchmark}.json",
    log:
        "results/logs/eval_split/{benchmark}.log",
    conda:
        "../../envs/eval.yaml"
    params:
        dataset=lambda w: config["datasets"][w.benchmark],
        train_fraction=config["splits"]["train_fraction"],
        counting=EVAL["counting"],
    script:
        "../../scripts/eval_split.py"


# a model whose images no other evaluation model reads: its images and texts in one job
rule features:
    input:
        split="results/splits/{benchmark}.json",
        model=model_inputs,
    output:
        images="results/features/{model}/{benchmark}.npz",
        texts="results/features/{model}/{benchmark}.text.npz",
    log:
        "results/logs/features/{model}/{benchmark}.log",
    wildcard_constraints:
        model=wildcard_regex(OWN_IMAGES),
    conda:
        "../../envs/eval.yaml"
    threads: max(1, EVAL["workers"])
    params:
        model=lambda w: EVAL_MODELS[w.model],
        weights_cache=WEIGHTS,
        batch_size=EVAL["batch_size"],
        workers=EVAL["workers"],
        device=EVAL["device"],
        test_only=TEST_IMAGES_ONLY,
        templates=lambda w: EVAL_MODELS[w.model].get("templates") or EVAL["templates"],
        variants=EVAL["counting"]["variants"],
    script:
        "../../scripts/features.py"


# a zoo entry scored under several prompt protocols (the leaderboard): the prompts never touch
# the images, so they are encoded once, under the entry's name, and every protocol reads them
rule image_features:
    input:
        split="results/splits/{benchmark}.json",
        model=image_model_inputs,
    output:
        images="results/features/{image_set}/{benchmark}.npz",
    log:
        "results/logs/image_features/{image_set}/{benchmark}.log",
    wildcard_constraints:
        image_set=wildcard_regex(SHARED_IMAGES),
    conda:
        "../../envs/eval.yaml"
    threads: max(1, EVAL["workers"])
    params:
        model=lambda w: IMAGE_SPECS[w.image_set],
        weights_cache=WEIGHTS,
        batch_size=EVAL["batch_size"],
        workers=EVAL["workers"],
        device=EVAL["device"],
        test_only=TEST_IMAGES_ONLY,
    script:
        "../../scripts/features.py"


# ... and the texts (class prompts, captions, counting captions) once per protocol
rule text_features:
    input:
        split="results/splits/{benchmark}.json",
        model=model_inputs,
    output:
        texts="results/features/{model}/{benchmark}.text.npz",
    log:
        "results/logs/text_features/{model}/{benchmark}.log",
    wildcard_constraints:
        model=wildcard_regex(sorted(set(EVAL_MODELS) - set(OWN_IMAGES))),
    conda:
        "../../envs/eval.yaml"
    params:
        model=lambda w: EVAL_MODELS[w.model],
        weights_cache=WEIGHTS,
        device=EVAL["device"],
        templates=lambda w: EVAL_MODELS[w.model].get("templates") or EVAL["templates"],
        variants=EVAL["counting"]["variants"],
    script:
        "../../scripts/features.py"


# one job scores every task of a benchmark on the cached features (a process start costs
# more than most tasks); one rule per benchmark group, since their task lists differ
for group in ("CLS", "RET", "COUNT"):
    if not task_outputs(group):
        continue

    rule:
        name:
            f"evaluate_{group.lower()}"
        input:
            split="results/splits/{benchmark}.json",
            images=lambda w: f"results/features/{IMAGE_SET[w.model]}/{w.benchmark}.npz",
            texts="results/features/{model}/{benchmark}.text.npz",
        output:
            task_outputs(group),
        log:
            f"results/logs/evaluate/{{model}}/{{benchmark}}.{group.lower()}.log",
        wildcard_constraints:
            benchmark=wildcard_regex([b for b in BENCHMARKS if DATASETS[b].group == group]),
        conda:
            "../../envs/eval.yaml"
        params:
            model=lambda w: EVAL_MODELS[w.model],
            settings=eval_settings(),
            tasks=[t for t in TASKS_BY_GROUP[group] if t in EVAL["tasks"]],
        script:
            "../../scripts/evaluate.py"


rule eval_summary:
    input:
        results=eval_results(),
    output:
        summary="results/eval/summary.csv",
    log:
        "results/logs/eval_summary.log",
    conda:
        "../../envs/eval.yaml"
    script:
        "../../scripts/eval_summary.py"
