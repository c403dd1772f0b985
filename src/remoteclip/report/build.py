"""The report's entry, build_report: reads the result files (results/eval/summary.csv and
the per-task JSON, training logs, caption files and their summary, de-duplication
summaries) and writes every file of OUTPUTS under the report folder: the tables, the
learning check, the DVC files, the plots and the index."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

from .captions import caption_stats
from .dvc_files import write_fewshot_points, write_metrics, write_training_log
from .formatting import write_csv, write_text
from .index import index_md
from .leaderboard import write_leaderboard
from .learning_check import learning_check, learning_check_outputs
from .outputs import OUTPUTS
from .plots import plot_caption_lengths, plot_confusion, plot_dedup, plot_fewshot, plot_top_words, plot_training
from .results import Results, read_training_log
from .table_v import table_v_table
from .tables import counting_table, fewshot_table, knn_table, linear_probe_table, retrieval_table, zeroshot_table

# the package's logger, not this module's: report.log names "remoteclip.report" as it did
# before the report became a package
log = logging.getLogger(__package__)


def build_report(
    out_dir: str | Path,
    *,
    summary: str | Path | None = None,
    results: Iterable[str | Path] = (),
    models: dict | None = None,
    runs: dict | None = None,
    benchmarks: dict | None = None,
    captions: Iterable[str | Path] = (),
    captions_summary: str | Path | None = None,
    dedup: dict[str, str | Path] | None = None,
    leaderboard: dict[str, dict] | None = None,
    licences: dict[str, dict] | None = None,
) -> dict[str, Path]:
    """Write every file of OUTPUTS under out_dir; returns {output name: path}.

    models: describe_models(...) output (inferred from the result files when None);
    runs: {run: {"log": train log.csv, "groups": [RET/DET/SEG], "start": start_key of its init}};
    benchmarks: {name: {"paper": the paper's name of the dataset (the catalogue key)}};
    dedup: {run: results/dedup/<run>/summary.json};
    leaderboard: {evaluation model: {"zoo", "protocol", "published", "measured"}} of the zoo models
    scored (evaluate.protocols.zoo_published: the authors' numbers with their protocols, and ours);
    licences: {source: {"licence", "terms"}} (remoteclip.licences.source_licences) for the data
    table and each run's "non-commercial sources" note.
    """
    out = Path(out_dir)
    paths = {name: out / rel for name, rel in OUTPUTS.items()}
    runs = runs or {}
    res = Results(summary, results, models, benchmarks)
    log.info("report: %d models, %d numbers, %d runs", len(res.models), len(res.values), len(runs))

    tables, points = write_tables(paths, res)
    write_leaderboard(paths, res, leaderboard or {})
    check_md = write_learning_check(paths, res, runs)
    write_metrics(paths["metrics"], res)
    write_fewshot_points(paths["fewshot_points"], points)
    logs = read_training_logs(runs)
    write_training_log(paths["training_log"], logs)

    cap_summary = (
        json.loads(Path(captions_summary).read_text()) if captions_summary and Path(captions_summary).is_file() else {}
    )
    groups = {name: d.get("group", "?") for name, d in (cap_summary.get("datasets") or {}).items()}
    stats = caption_stats(captions, groups)
    dedup_summaries = {run: json.loads(Path(p).read_text()) for run, p in (dedup or {}).items() if Path(p).is_file()}

    plot_training(paths["training_png"], logs)
    plot_fewshot(paths["fewshot_png"], res, tables["fewshot"][1])
    plot_confusion(paths["counting_png"], res)
    plot_caption_lengths(paths["caption_lengths_png"], stats)
    plot_top_words(paths["top_words_png"], stats)
    plot_dedup(paths["dedup_png"], dedup_summaries)

    write_text(
        paths["index"], index_md(res, tables, check_md, cap_summary, dedup_summaries, logs, runs, licences or {})
    )
    return paths


def write_tables(paths: dict[str, Path], res: Results) -> tuple[dict[str, tuple], list[dict]]:
    """tables/<name>.md and .csv for every paper table (Table V's ablations too); returns {name: (markdown, rows, header)}
    and the few-shot points (for fewshot.csv and the few-shot plot)."""
    tables = {
        "retrieval": retrieval_table(res),
        "zeroshot": zeroshot_table(res),
        "linear_probe": linear_probe_table(res),
        "knn": knn_table(res),
    }
    text, rows, header, points = fewshot_table(res)
    tables["fewshot"] = (text, rows, header)
    tables["counting"] = counting_table(res)
    tables["table_v"] = table_v_table(res)
    for name, (text, rows, header) in tables.items():
        write_text(paths[f"{name}_md"], text)
        write_csv(paths[f"{name}_csv"], header, rows)
    return tables, points


def write_learning_check(paths: dict[str, Path], res: Results, runs: dict) -> str:
    """learning_check.md, .csv and .json; returns the markdown (the index includes it)."""
    check = learning_check(res, runs)
    check_md, check_rows, check_header = learning_check_outputs(check)
    write_text(paths["learning_check_md"], check_md)
    write_csv(paths["learning_check_csv"], check_header, check_rows)
    write_text(paths["learning_check_json"], json.dumps(check, indent=1) + "\n")
    return check_md


def read_training_logs(runs: dict) -> dict[str, list[dict]]:
    """{run: its training log} for every run whose log exists; a missing one is a warning."""
    logs = {}
    for run, info in runs.items():
        path = Path(info.get("log") or f"results/train/{run}/log.csv")
        if path.is_file():
            logs[run] = read_training_log(path)
        else:
            log.warning("run %s: no training log at %s; its curves are left out", run, path)
    return logs
