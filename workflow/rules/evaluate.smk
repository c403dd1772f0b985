# Evaluation: split files per benchmark, image and text features once per (model,
# benchmark), then every task on the cached features, and one summary CSV.


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


rule features:
    input:
        split="results/splits/{benchmark}.json",
        model=model_inputs,
    output:
        images="results/features/{model}/{benchmark}.npz",
        texts="results/features/{model}/{benchmark}.text.npz",
    log:
        "results/logs/features/{model}/{benchmark}.log",
    conda:
        "../../envs/eval.yaml"
    threads: max(1, EVAL["workers"])
    params:
        model=lambda w: EVAL_MODELS[w.model],
        weights_cache=WEIGHTS,
        batch_size=EVAL["batch_size"],
        workers=EVAL["workers"],
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
            images="results/features/{model}/{benchmark}.npz",
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
