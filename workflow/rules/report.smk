# The report: paper-style tables, the learning check, plots and DVC's metric/plot files
# under results/report/, all marked for `snakemake --report results/report.zip`.


rule report:
    input:
        # the per-task JSON hold what the summary leaves out (confusion matrices, class lists)
        summary=["results/eval/summary.csv"] if EVAL_MODELS else [],
        results=eval_results() if EVAL_MODELS else [],
        models=expand("results/models/{run}.pt", run=RUNS),
        captions=expand("results/captions/{dataset}.jsonl", dataset=CAPTIONED),
        captions_summary="results/captions/summary.json",
        dedup=expand("results/dedup/{run}/summary.json", run=RUNS),
    output:
        index=reported("index", "0. overview"),
        learning_check_md=report_file("learning_check_md"),
        learning_check_csv=reported("learning_check_csv", "0. overview"),
        learning_check_json=report_file("learning_check_json"),
        metrics=report_file("metrics"),
        training_log=report_file("training_log"),
        fewshot_points=report_file("fewshot_points"),
        retrieval_md=report_file("retrieval_md"),
        retrieval_csv=reported("retrieval_csv", "1. tables", "retrieval"),
        zeroshot_md=report_file("zeroshot_md"),
        zeroshot_csv=reported("zeroshot_csv", "1. tables", "classification"),
        linear_probe_md=report_file("linear_probe_md"),
        linear_probe_csv=reported("linear_probe_csv", "1. tables", "classification"),
        knn_md=report_file("knn_md"),
        knn_csv=reported("knn_csv", "1. tables", "classification"),
        fewshot_md=report_file("fewshot_md"),
        fewshot_csv=reported("fewshot_csv", "1. tables", "classification"),
        counting_md=report_file("counting_md"),
        counting_csv=reported("counting_csv", "1. tables", "counting"),
        table_v_md=report_file("table_v_md"),
        table_v_csv=reported("table_v_csv", "1. tables", "ablations"),
        leaderboard_md=report_file("leaderboard_md"),
        leaderboard_csv=reported("leaderboard_csv", "1. tables", "leaderboard"),
        leaderboard_png=reported("leaderboard_png", "2. plots", "evaluation"),
        training_png=reported("training_png", "2. plots", "training"),
        fewshot_png=reported("fewshot_png", "2. plots", "evaluation"),
        counting_png=reported("counting_png", "2. plots", "evaluation"),
        caption_lengths_png=reported("caption_lengths_png", "2. plots", "data"),
        top_words_png=reported("top_words_png", "2. plots", "data"),
        dedup_png=reported("dedup_png", "2. plots", "data"),
    log:
        "results/logs/report.log",
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        models=REPORT_MODELS,
        runs=report_runs(),
        benchmarks={b: {"paper": config["datasets"][b].get("catalogue") or b} for b in BENCHMARKS},
        dedup_runs=RUNS,
        leaderboard=zoo_published(),
        licences=source_licences(config["datasets"], CATALOGUE, CAPTIONED),
    script:
        "../../scripts/report.py"
