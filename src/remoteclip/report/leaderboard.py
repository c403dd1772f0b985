"""The leaderboard page: every scored model (zoo models under each prompt protocol, our runs,
anything else the config scores) as rows, one table per task with one headline number per
benchmark, ours beside the authors' published number (config/models.yaml `published`); a long,
sortable CSV beside it; a plot of mean zero-shot top-1 against mean retrieval mean recall per
model.

Each published number carries its protocol's conditions for its task (split, prompts, probe
recipe, k-NN settings; evaluate.protocols) and each model ours: the difference is given only
where the two are equal, since otherwise it measures the protocols as much as the model.
Elsewhere the cell names the protocol the published number was measured with."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .formatting import full_mean, md_table, num_text, write_csv, write_text
from .results import Results

# (task, its headline metric, what the column means); few-shot's is its largest shot count
HEADLINES = (
    ("retrieval", "mean_recall", "retrieval mean recall (%)"),
    ("zeroshot", "acc1", "zero-shot top-1 (%)"),
    ("linear_probe", "acc1", "linear probe top-1 (%)"),
    ("knn", "acc1", "k-NN top-1 (%)"),
    ("fewshot", None, "few-shot top-1 (%), {shots} shots, mean over seeds"),
    ("counting", "words.top1", "counting top-1 (%), number words"),
)
CSV_HEADER = [
    "model",
    "zoo",
    "protocol",
    "benchmark",
    "task",
    "metric",
    "ours",
    "published",
    "published_protocol",
    "difference",
    "source",
]


def published_numbers(zoo_models: dict[str, dict]) -> dict[tuple, dict]:
    """{(model, benchmark, task, metric): published number} from the zoo entries' `published`.
    `zoo_models`: evaluate.protocols.zoo_published (each number with its `protocol` and its
    `conditions`, each model with the conditions of ours, `measured`)."""
    return {
        (model, p["benchmark"], p["task"], p["metric"]): p
        for model, info in zoo_models.items()
        for p in info.get("published") or []
    }


def fewshot_metric(res: Results, published: dict[tuple, dict]) -> str | None:
    """`<k>.mean` of the largest shot count both ours and the published numbers have (only
    there do they meet), else the largest of ours."""
    ours = _shots(metric for (_, _, t, metric) in res.values if t == "fewshot")
    theirs = _shots(metric for (_, _, t, metric) in published if t == "fewshot")
    shots = (ours & theirs) or ours
    return f"{max(shots)}.mean" if shots else None


def _shots(metrics) -> set[int]:
    return {int(m.group(1)) for metric in metrics if (m := re.fullmatch(r"(\d+)\.mean", metric))}


def leaderboard_rows(res: Results, zoo_models: dict[str, dict]) -> list[dict[str, Any]]:
    """One CSV row per (model, benchmark, task) headline number we measured or the authors published."""
    published = published_numbers(zoo_models)
    rows = []
    for task, metric, _ in HEADLINES:
        metric = metric or fewshot_metric(res, published)
        if metric is None:
            continue
        keys = {(m, b) for (m, b, t, name) in res.values if t == task and name == metric}
        keys |= {(m, b) for (m, b, t, name) in published if t == task and name == metric}
        for model, bench in sorted(keys):
            info = zoo_models.get(model, {})
            number = published.get((model, bench, task, metric), {})
            rows.append(
                {
                    "model": model,
                    "zoo": info.get("zoo", ""),
                    "protocol": info.get("protocol", ""),
                    "benchmark": bench,
                    "task": task,
                    "metric": metric,
                    **_beside(res.get(model, bench, task, metric), number, (info.get("measured") or {}).get(task)),
                }
            )
    return rows


def _beside(ours: float | None, number: dict, measured: dict | None) -> dict[str, Any]:
    """Ours, the published number and its protocol, and ours minus theirs where both were
    measured under the same conditions (none is known for a protocol that says `unknown`)."""
    theirs = float(number["value"]) if number else None
    same = bool(number) and measured is not None and number.get("conditions") == measured
    return {
        "ours": ours,
        "published": theirs,
        "published_protocol": number.get("protocol", ""),
        "difference": ours - theirs if same and ours is not None and theirs is not None else None,
        "source": number.get("source", ""),
    }


def task_table(rows: list[dict], task: str, title: str) -> str:
    """Models as rows, benchmarks as columns: "ours (published, difference)", or "ours
    (published, <its protocol> protocol)" where the protocols differ, and the mean of ours."""
    mine = [r for r in rows if r["task"] == task]
    if not mine:
        return ""
    title = title.format(shots=mine[0]["metric"].split(".")[0])
    benches = sorted({r["benchmark"] for r in mine})
    models = sorted({r["model"] for r in mine})
    cell = {(r["model"], r["benchmark"]): r for r in mine}
    table = []
    for model in models:
        cells = [_cell(cell.get((model, b))) for b in benches]
        ours = [cell[(model, b)]["ours"] if (model, b) in cell else None for b in benches]
        table.append([model, *cells, num_text(full_mean(ours))])
    return f"### {title}\n\n" + md_table(["model", *benches, "mean"], table) + "\n"


def _cell(row: dict | None) -> str:
    if row is None:
        return "–"
    text = num_text(row["ours"])
    if row["published"] is None:
        return text
    if row["difference"] is None:  # not compared: their number, named by how it was measured
        return text + f" ({num_text(row['published'])}, {row['published_protocol']} protocol)"
    return text + f" ({num_text(row['published'])}, {num_text(row['difference'], signed=True)})"


def leaderboard_md(rows: list[dict]) -> str:
    head = (
        "# Leaderboard\n\n"
        "Every model scored by this workflow with one protocol per row (`<zoo model>.<prompt protocol>`). "
        "A cell is our number, then in brackets the authors' published number and ours minus theirs, "
        "given only where their protocol (split, prompts, probe, k-NN settings; config/models.yaml "
        "`protocols`) is ours; elsewhere the brackets name the protocol their number was measured with. "
        "The sortable CSV is tables/leaderboard.csv.\n\n"
    )
    tables = [task_table(rows, task, title) for task, _, title in HEADLINES]
    body = "".join(t for t in tables if t)
    return head + (body or "No evaluation results yet.\n")


def plot_leaderboard(path: Path, rows: list[dict]) -> None:
    """Mean zero-shot top-1 against mean retrieval mean recall, one point per model that has both."""
    from .plots import _plt, _save, no_data_png

    means = {}
    for model in sorted({r["model"] for r in rows}):
        zs = [r["ours"] for r in rows if r["model"] == model and r["task"] == "zeroshot"]
        ret = [r["ours"] for r in rows if r["model"] == model and r["task"] == "retrieval"]
        if full_mean(zs) is not None and full_mean(ret) is not None:
            means[model] = (full_mean(ret), full_mean(zs))
    if not means:
        return no_data_png(path, "Leaderboard", "no model has both zero-shot and retrieval results")
    fig, ax = _plt().subplots(figsize=(7, 5))
    for model, (x, y) in means.items():
        ax.scatter([x], [y])
        ax.annotate(model, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="mean retrieval mean recall (%)", ylabel="mean zero-shot top-1 (%)", title="leaderboard")
    ax.grid(alpha=0.3)
    _save(fig, path)


def write_leaderboard(paths: dict[str, Path], res: Results, zoo_models: dict[str, dict]) -> list[dict]:
    rows = leaderboard_rows(res, zoo_models)
    write_text(paths["leaderboard_md"], leaderboard_md(rows))
    write_csv(paths["leaderboard_csv"], CSV_HEADER, rows)
    plot_leaderboard(paths["leaderboard_png"], rows)
    return rows
