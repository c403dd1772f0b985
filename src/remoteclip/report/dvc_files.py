"""The files DVC reads (dvc.yaml names them): metrics.json for `dvc metrics show/diff`, and
training_log.csv (loss and learning rate per run and step) and fewshot.csv (top-1 per model,
benchmark and shots) for `dvc plots`."""

from __future__ import annotations

import json
from pathlib import Path

from .formatting import write_csv, write_text
from .results import Results


def headline_metrics(res: Results) -> dict[str, dict[str, float]]:
    """{model: {"<metric>/<benchmark>": value}} plus averages; `dvc metrics show/diff` reads it."""
    out: dict[str, dict[str, float]] = {}
    wanted = [
        ("zeroshot", "acc1", "zeroshot_top1"),
        ("retrieval", "mean_recall", "retrieval_mean_recall"),
        ("linear_probe", "acc1", "linear_probe_top1"),
        ("knn", "acc1", "knn_top1"),
        ("counting", "words.top1", "counting_words_top1"),
        ("counting", "digits.top1", "counting_digits_top1"),
    ]
    for model in res.models:
        flat = {}
        for task, metric, key in wanted:
            found = {b: res.get(model, b, task, metric) for b in res.benches(task)}
            values = {b: v for b, v in found.items() if v is not None}
            flat.update({f"{key}/{b}": round(v, 4) for b, v in values.items()})
            if len(values) > 1 and task in ("zeroshot", "retrieval", "linear_probe", "knn"):
                flat[f"{key}/average"] = round(sum(values.values()) / len(values), 4)
        if flat:
            out[model] = flat
    return out


def write_metrics(path: Path, res: Results) -> None:
    write_text(path, json.dumps(headline_metrics(res), indent=1, sort_keys=True) + "\n")


def write_fewshot_points(path: Path, points: list[dict]) -> None:
    """points: fewshot_table's {model, benchmark, shots, top1}, one per evaluated shot count."""
    write_csv(path, ["model", "benchmark", "shots", "top1"], points)


def write_training_log(path: Path, logs: dict[str, list[dict]]) -> None:
    """logs: {run: read_training_log(...)}; one file for all runs, a row per run and step."""
    write_csv(path, ["run", "step", "loss", "lr"], [{"run": run, **r} for run, rows in logs.items() for r in rows])
