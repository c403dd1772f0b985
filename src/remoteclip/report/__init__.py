"""The report: paper-style tables (markdown + CSV), the learning check, plots, the files
`dvc metrics` / `dvc plots` read, and an index.

It reads result files only (results/eval/summary.csv and the per-task JSON, training logs,
caption files, de-duplication summaries), so it runs in seconds and can be rebuilt on any
machine that holds the results. A section without data says so; a plot without data is
still written (a PNG saying "no data") so that every declared output exists.

Our numbers sit beside the paper's (src/remoteclip/data/paper_results.csv) wherever a
configured model names a paper row (`paper:` in evaluation.models, or the default below)
and the benchmark is one of the paper's.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from .models import describe_models, infer_model, paper_name, start_key
from .paper import PAPER_LABELS, PAPER_ORDER, TABLE_V_SOURCES, paper_models, paper_results
from .formatting import full_mean, md_table, num_text, write_csv, write_text
from .results import KIND_ORDER, Results, read_training_log
from .tables import (NO_EVAL, RET_METRICS, compared, counting_table, dataset_table, fewshot_table, knn_table,
                     linear_probe_table, retrieval_table, zeroshot_table)

log = logging.getLogger(__name__)

# every file the report writes, relative to its folder; the rule declares exactly these
OUTPUTS = {
    "index": "index.md",
    "metrics": "metrics.json",
    "training_log": "training_log.csv",
    "fewshot_points": "fewshot.csv",
    "learning_check_md": "learning_check.md",
    "learning_check_csv": "learning_check.csv",
    "learning_check_json": "learning_check.json",
    "retrieval_md": "tables/retrieval.md",
    "retrieval_csv": "tables/retrieval.csv",
    "zeroshot_md": "tables/zeroshot.md",
    "zeroshot_csv": "tables/zeroshot.csv",
    "linear_probe_md": "tables/linear_probe.md",
    "linear_probe_csv": "tables/linear_probe.csv",
    "knn_md": "tables/knn.md",
    "knn_csv": "tables/knn.csv",
    "fewshot_md": "tables/fewshot.md",
    "fewshot_csv": "tables/fewshot.csv",
    "counting_md": "tables/counting.md",
    "counting_csv": "tables/counting.csv",
    "training_png": "plots/training.png",
    "fewshot_png": "plots/fewshot.png",
    "counting_png": "plots/counting_confusion.png",
    "caption_lengths_png": "plots/caption_lengths.png",
    "top_words_png": "plots/top_words.png",
    "dedup_png": "plots/dedup.png",
}

# the learning check's metrics: (task, metric, label)
CHECKED = [("zeroshot", "acc1", "zero-shot top-1"), ("retrieval", "mean_recall", "retrieval mean recall"),
           ("counting", "words.top1", "counting top-1 (words)"), ("counting", "digits.top1", "counting top-1 (digits)")]

STOPWORDS = frozenset("a an the is are was were be been of in on at to and or with by for from as it its this that "
                      "there these those some many several two three four five six seven eight nine ten one".split())


# ---------------------------------------------------------------- learning check


def _baseline(res: Results, model: str, runs: dict) -> tuple[str, str] | None:
    """The model a run model started from: its own `init` entry first, then any evaluated
    model that is the same network as the run's initialisation (start_key)."""
    run = res.models[model]["run"]
    for name, info in res.models.items():
        if info["kind"] == "init" and info["run"] == run:
            return name, "initialisation of the same run"
    start = (runs.get(run) or {}).get("start")
    for name, info in res.models.items():
        if info["kind"] in ("init", "pretrained") and start is not None and info.get("start") == start:
            return name, "same initial weights: " + info["origin"]
    return None


def _differences(res: Results, a: str, b: str) -> list[dict]:
    rows = []
    for task, metric, label in CHECKED:
        for bench in res.benches(task):
            va, vb = res.get(a, bench, task, metric), res.get(b, bench, task, metric)
            if va is None or vb is None:
                continue
            chance = (100.0 / n if (n := res.classes(bench)) else None) if task == "zeroshot" else \
                10.0 if task == "counting" else None
            rows.append({"benchmark": bench, "task": task, "metric": metric, "label": label,
                         "a": va, "b": vb, "difference": va - vb, "chance": chance})
    return rows


def _averages(rows: list[dict]) -> dict[str, float | None]:
    out = {}
    for task, metric in (("zeroshot", "acc1"), ("retrieval", "mean_recall")):
        diffs = [r["difference"] for r in rows if r["task"] == task and r["metric"] == metric]
        out[task] = sum(diffs) / len(diffs) if diffs else None
    return out


def _direction(value: float | None) -> str:
    if value is None:
        return "not measured"
    return "higher" if value > 0 else "lower" if value < 0 else "unchanged"


def learning_check(res: Results, runs: dict) -> dict:
    """Trained minus initialisation for every run model that has its "before" evaluated, and
    RET + DET/SEG runs against RET-only runs from the same initial weights (Table V's question)."""
    pairs = []
    for model, info in res.models.items():
        if info["kind"] != "run":
            continue
        found = _baseline(res, model, runs)
        if not found:
            continue
        baseline, relation = found
        rows = _differences(res, model, baseline)
        for r in rows:
            r["trained"], r["initial"] = r.pop("a"), r.pop("b")
        pairs.append({"model": model, "run": info["run"], "baseline": baseline, "relation": relation,
                      "rows": rows, "improved": sum(r["difference"] > 0 for r in rows), "compared": len(rows),
                      "above_chance": sum(r["trained"] > r["chance"] for r in rows if r["chance"] is not None),
                      "with_chance": sum(r["chance"] is not None for r in rows)})

    run_model = {}
    for name, info in res.models.items():
        if info["kind"] == "run":
            run_model.setdefault(info["run"], name)
    sources = []
    for run_a, a in run_model.items():
        groups_a = set((runs.get(run_a) or {}).get("groups") or [])
        if "RET" not in groups_a or not groups_a & {"DET", "SEG"}:
            continue
        for run_b, b in run_model.items():
            spec_b = runs.get(run_b) or {}
            if set(spec_b.get("groups") or []) != {"RET"} or spec_b.get("start") != (runs.get(run_a) or {}).get("start"):
                continue
            rows = _differences(res, a, b)
            for r in rows:
                r["with_det_seg"], r["ret_only"] = r.pop("a"), r.pop("b")
            avg = _averages(rows)
            sources.append({"with_det_seg": a, "ret_only": b, "runs": [run_a, run_b],
                            "groups": sorted(groups_a), "rows": rows, "average_difference": avg,
                            "statement": _sources_statement(a, b, avg)})
    paper = {"backbone": TABLE_V_SOURCES["backbone"],
             **{task: TABLE_V_SOURCES["RET + DET + SEG"][task] - TABLE_V_SOURCES["RET only"][task]
                for task in ("retrieval", "zeroshot")}}
    return {"pairs": pairs, "sources": sources, "paper_table_v": {**TABLE_V_SOURCES, "difference": paper}}


def _sources_statement(a: str, b: str, avg: dict) -> str:
    parts = [f"{label} {_direction(avg[task])} by {abs(avg[task]):.2f} points" if avg[task] is not None
             else f"{label} not measured" for task, label in (("zeroshot", "zero-shot top-1 (mean over benchmarks)"),
                                                              ("retrieval", "retrieval mean recall (mean)"))]
    measured = [v for v in avg.values() if v is not None]
    verdict = ("the DET/SEG captions helped on every measured average" if measured and all(v > 0 for v in measured)
               else "the DET/SEG captions did not help on any measured average" if measured and all(v <= 0 for v in measured)
               else "the DET/SEG captions helped on some averages and not on others" if measured
               else "no shared benchmark to compare")
    return f"{a} (with DET/SEG) vs {b} (RET only): " + "; ".join(parts) + f". Here {verdict}."


def learning_check_outputs(check: dict) -> tuple[str, list[dict], list[str]]:
    header = ["comparison", "model", "baseline", "relation", "benchmark", "task", "metric", "value", "baseline_value",
              "difference", "chance"]
    lines = ["# Learning check\n\n",
             "Did training move the model away from where it started? Each run model against its initialisation "
             "(trained - initial, percentage points), with chance level (zero-shot: 100 / classes; counting "
             "top-1: 10 %).\n"]
    csv_rows = []
    if not check["pairs"]:
        lines.append("\nNo run model has its initialisation evaluated (add `{run: X, init: true}` to "
                     "`evaluation.models`, or the pretrained model the run starts from).\n")
    for pair in check["pairs"]:
        lines.append(f"\n## {pair['model']} vs {pair['baseline']} ({pair['relation']})\n\n")
        if not pair["rows"]:
            lines.append("No benchmark scored for both.\n")
            continue
        lines.append(f"Better than its initialisation on {pair['improved']} of {pair['compared']} numbers; above "
                     f"chance on {pair['above_chance']} of {pair['with_chance']} with a chance level.\n\n")
        lines.append(md_table(["benchmark", "metric", "trained", "initial", "trained − initial", "chance"],
                              [[r["benchmark"], r["label"], num_text(r["trained"]), num_text(r["initial"]),
                                num_text(r["difference"], True), num_text(r["chance"])] for r in pair["rows"]]))
        csv_rows += [{"comparison": "trained - initial", "model": pair["model"], "baseline": pair["baseline"],
                      "relation": pair["relation"], "benchmark": r["benchmark"], "task": r["task"],
                      "metric": r["metric"], "value": r["trained"], "baseline_value": r["initial"],
                      "difference": r["difference"], "chance": r["chance"]} for r in pair["rows"]]

    table_v = check["paper_table_v"]
    lines.append("\n## Do the DET/SEG captions help? (paper Table V)\n\n")
    lines.append(f"Paper ({table_v['backbone']}, dataset ablation): RET + DET + SEG vs RET only changes the "
                 f"retrieval average by {table_v['difference']['retrieval']:+.2f} and the zero-shot average by "
                 f"{table_v['difference']['zeroshot']:+.2f} points.\n\n")
    if not check["sources"]:
        lines.append("Not measured here: it needs an evaluated run on RET + DET/SEG sources and one on RET only "
                     "from the same initial weights.\n")
    for comp in check["sources"]:
        lines.append(comp["statement"] + "\n\n")
        if comp["rows"]:
            lines.append(md_table(["benchmark", "metric", comp["with_det_seg"], comp["ret_only"], "difference"],
                                  [[r["benchmark"], r["label"], num_text(r["with_det_seg"]), num_text(r["ret_only"]),
                                    num_text(r["difference"], True)] for r in comp["rows"]]) + "\n")
        csv_rows += [{"comparison": "with DET/SEG - RET only", "model": comp["with_det_seg"],
                      "baseline": comp["ret_only"], "relation": "same initial weights, RET-only sources",
                      "benchmark": r["benchmark"], "task": r["task"], "metric": r["metric"],
                      "value": r["with_det_seg"], "baseline_value": r["ret_only"], "difference": r["difference"],
                      "chance": r["chance"]} for r in comp["rows"]]
    return "".join(lines), csv_rows, header


# ---------------------------------------------------------------- DVC metrics and plot files


def headline_metrics(res: Results) -> dict[str, dict[str, float]]:
    """{model: {"<metric>/<benchmark>": value}} plus averages; `dvc metrics show/diff` reads it."""
    out: dict[str, dict[str, float]] = {}
    wanted = [("zeroshot", "acc1", "zeroshot_top1"), ("retrieval", "mean_recall", "retrieval_mean_recall"),
              ("linear_probe", "acc1", "linear_probe_top1"), ("knn", "acc1", "knn_top1"),
              ("counting", "words.top1", "counting_words_top1"), ("counting", "digits.top1", "counting_digits_top1")]
    for model in res.models:
        flat = {}
        for task, metric, key in wanted:
            values = {b: res.get(model, b, task, metric) for b in res.benches(task)}
            values = {b: v for b, v in values.items() if v is not None}
            flat.update({f"{key}/{b}": round(v, 4) for b, v in values.items()})
            if len(values) > 1 and task in ("zeroshot", "retrieval", "linear_probe", "knn"):
                flat[f"{key}/average"] = round(sum(values.values()) / len(values), 4)
        if flat:
            out[model] = flat
    return out


# ---------------------------------------------------------------- captions and de-duplication


WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")


def caption_stats(paths: Iterable[str | Path], groups: dict[str, str]) -> dict[str, dict]:
    """Per source: its group, caption lengths in words and a word counter (stop words left out)."""
    stats: dict[str, dict] = {}
    for path in paths:
        with open(path) as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                source = row.get("source") or Path(path).stem
                entry = stats.setdefault(source, {"group": groups.get(source, "?"), "lengths": Counter(),
                                                  "words": Counter(), "images": 0})
                entry["images"] += 1
                for caption in row.get("captions") or []:
                    words = WORD.findall(caption.lower())
                    entry["lengths"][len(words)] += 1
                    entry["words"].update(w for w in words if w not in STOPWORDS and not w.isdigit())
    return stats


# ---------------------------------------------------------------- plots


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def no_data_png(path: Path, title: str, message: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.axis("off")
    ax.text(0.5, 0.6, title, ha="center", va="center", fontsize=13, weight="bold")
    ax.text(0.5, 0.3, f"no data: {message}", ha="center", va="center", fontsize=10, wrap=True)
    _save(fig, path)


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _plt().close(fig)


def _grid(n: int, cols: int = 4, size: tuple[float, float] = (4.0, 3.2)):
    plt = _plt()
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def plot_training(path: Path, logs: dict[str, list[dict]]) -> None:
    logs = {run: rows for run, rows in logs.items() if rows}
    if not logs:
        return no_data_png(path, "Training loss and learning rate", "no run has a training log")
    plt = _plt()
    fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(11, 3.8))
    for run, rows in logs.items():
        steps = [r["step"] for r in rows]
        ax_loss.plot(steps, [r["loss"] for r in rows], label=run)
        ax_lr.plot(steps, [r["lr"] for r in rows], label=run)
    ax_loss.set(title="training loss (contrastive)", xlabel="step", ylabel="loss")
    ax_lr.set(title="learning rate", xlabel="step", ylabel="lr")
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for ax in (ax_loss, ax_lr):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)


def plot_fewshot(path: Path, res: Results, csv_rows: list[dict]) -> None:
    benches = res.benches("fewshot")
    if not benches:
        return no_data_png(path, "Few-shot top-1", "no few-shot results")
    fig, axes = _grid(len(benches))
    for ax, bench in zip(axes, benches):
        for row in (r for r in csv_rows if r["benchmark"] == bench and r["row"] in ("ours", "paper")):
            shots = sorted(int(k) for k in row if k.isdigit() and row[k] is not None)
            if not shots:
                continue
            ys = [row[str(s)] for s in shots]
            if row["row"] == "ours":
                errs = [row.get(f"{s}_std") or 0.0 for s in shots]
                ax.errorbar(shots, ys, yerr=errs, marker="o", capsize=3, label=row["model"])
            else:
                ax.plot(shots, ys, "k--", marker="x", alpha=0.7, label=f"paper: {row['model']}")
        ax.set_xscale("log", base=2)
        ticks = sorted({int(k) for r in csv_rows if r["benchmark"] == bench for k in r if k.isdigit()})
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set(title=res.label(bench), xlabel="shots per class", ylabel="top-1 (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _save(fig, path)


def plot_confusion(path: Path, res: Results) -> None:
    panels = []
    for (model, bench, task), doc in res.json.items():
        if task != "counting":
            continue
        for variant, metrics in (doc.get("metrics") or {}).items():
            if isinstance(metrics, dict) and metrics.get("confusion"):
                panels.append((bench, variant, model, metrics))
    if not panels:
        return no_data_png(path, "Counting confusion matrices", "no counting results")
    order = {m: i for i, m in enumerate(res.models)}
    rows = sorted({(b, v) for b, v, _, _ in panels}, key=lambda bv: (bv[0], bv[1] != "words", bv[1]))
    cols = sorted({m for _, _, m, _ in panels}, key=lambda m: order.get(m, len(order)))
    plt = _plt()
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(3.2 * len(cols), 3.2 * len(rows)), squeeze=False)
    image = None
    # one colour scale for all panels, up to the largest cell: untrained models sit near 0.1
    vmax = max(max(max(row) for row in m["confusion"]) for _, _, _, m in panels) or 1.0
    for bench, variant, model, metrics in panels:
        ax = axes[rows.index((bench, variant))][cols.index(model)]
        matrix = metrics["confusion"]
        n = len(matrix)
        image = ax.imshow(matrix, vmin=0, vmax=vmax, cmap="viridis")
        ax.set_xticks(range(n), [str(i + 1) for i in range(n)], fontsize=7)
        ax.set_yticks(range(n), [str(i + 1) for i in range(n)], fontsize=7)
        top1 = metrics.get("top1")
        ax.set_title(f"{model}\n{bench}, {variant}" + (f", top-1 {top1:.1f}%" if top1 is not None else ""),
                     fontsize=8)
        ax.set_xlabel("predicted count", fontsize=7)
        if cols.index(model) == 0:
            ax.set_ylabel("true count", fontsize=7)
    for r, row in enumerate(rows):
        for c, model in enumerate(cols):
            if not axes[r][c].images:
                axes[r][c].axis("off")
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="share of the true count's samples")
    _save(fig, path)


def plot_caption_lengths(path: Path, stats: dict[str, dict]) -> None:
    groups = {"RET (human captions)": [s for s in stats.values() if s["group"] == "RET"],
              "B2C (DET + SEG boxes)": [s for s in stats.values() if s["group"] in ("DET", "SEG")]}
    lengths = {name: sum((s["lengths"] for s in members), Counter()) for name, members in groups.items()}
    lengths = {name: c for name, c in lengths.items() if c}
    if not lengths:
        return no_data_png(path, "Caption length per source group", "no caption files")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    low, top = min(min(c) for c in lengths.values()), max(max(c) for c in lengths.values())
    bins = [x - 0.5 for x in range(max(0, low - 1), top + 3)]
    for name, counter in lengths.items():
        values, weights = zip(*sorted(counter.items()))
        total = sum(weights)
        mean = sum(v * w for v, w in counter.items()) / total
        ax.hist(values, bins=bins, weights=[w / total for w in weights], histtype="step", linewidth=2,
                label=f"{name}: {total} captions, mean {mean:.1f} words")
    ax.set(title="caption length (paper Fig. 4)", xlabel="words per caption", ylabel="share of captions")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_top_words(path: Path, stats: dict[str, dict], n: int = 12) -> None:
    sources = sorted((s for s in stats if stats[s]["words"]), key=lambda s: ("RET", "DET", "SEG").index(
        stats[s]["group"]) if stats[s]["group"] in ("RET", "DET", "SEG") else 3)
    if not sources:
        return no_data_png(path, "Top words per source", "no caption files")
    fig, axes = _grid(len(sources), cols=3, size=(4.2, 3.4))
    for ax, source in zip(axes, sources):
        common = stats[source]["words"].most_common(n)[::-1]
        ax.barh([w for w, _ in common], [c for _, c in common], color="tab:blue" if stats[source]["group"] == "RET"
                else "tab:orange")
        ax.set_title(f"{source} ({stats[source]['group']})", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("occurrences", fontsize=7)
    fig.suptitle("most frequent words per source (paper Fig. 5, stop words left out)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_dedup(path: Path, summaries: dict[str, dict]) -> None:
    if not summaries:
        return no_data_png(path, "De-duplication", "no run, so no de-duplication summary")
    reasons = sorted({p["reason"] for s in summaries.values() for p in s.get("pairs") or []},
                     key=lambda r: (r != "training duplicate", r))
    colors = {r: f"C{i}" for i, r in enumerate(reasons)}
    fig, axes = _grid(len(summaries), cols=2, size=(6.0, 0.45 * max(len(s.get("per_source") or {}) for s in
                                                                      summaries.values()) + 1.8))
    for ax, (run, summary) in zip(axes, summaries.items()):
        per_source = summary.get("per_source") or {}
        sources = sorted(per_source)
        labels = [f"{s} ({per_source[s]['kept']}/{per_source[s]['images']} kept)" for s in sources]
        left = [0] * len(sources)
        for reason in reasons:
            counts = [sum(p["removed"] for p in summary.get("pairs") or []
                          if p["source"] == s and p["reason"] == reason) for s in sources]
            if any(counts):
                ax.barh(labels, counts, left=left, color=colors[reason], label=reason)
                left = [a + b for a, b in zip(left, counts)]
        if not any(left):
            ax.barh(labels, [0] * len(labels))
            ax.set_xlim(0, 1)
            ax.text(0.5, 0.5, "nothing removed", transform=ax.transAxes, ha="center", va="center", alpha=0.7)
        else:
            ax.legend(fontsize=7)
        ax.set_title(f"{run}: removed {summary.get('removed', 0)} of {summary.get('images', 0)} images", fontsize=9)
        ax.set_xlabel("images removed")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    _save(fig, path)


# ---------------------------------------------------------------- the whole report


def build_report(out_dir: str | Path, *, summary: str | Path | None = None, results: Iterable[str | Path] = (),
                 models: dict | None = None, runs: dict | None = None, benchmarks: dict | None = None,
                 captions: Iterable[str | Path] = (), captions_summary: str | Path | None = None,
                 dedup: dict[str, str | Path] | None = None) -> dict[str, Path]:
    """Write every file of OUTPUTS under out_dir; returns {output name: path}.

    models: describe_models(...) output (inferred from the result files when None);
    runs: {run: {"log": train log.csv, "groups": [RET/DET/SEG], "start": start_key of its init}};
    benchmarks: {name: {"paper": the paper's name of the dataset (the catalogue key)}};
    dedup: {run: results/dedup/<run>/summary.json}.
    """
    out = Path(out_dir)
    paths = {name: out / rel for name, rel in OUTPUTS.items()}
    runs = runs or {}
    res = Results(summary, results, models, benchmarks)
    log.info("report: %d models, %d numbers, %d runs", len(res.models), len(res.values), len(runs))

    tables = {"retrieval": retrieval_table(res), "zeroshot": zeroshot_table(res),
              "linear_probe": linear_probe_table(res), "knn": knn_table(res)}
    text, rows, header, points = fewshot_table(res)
    tables["fewshot"] = (text, rows, header)
    tables["counting"] = counting_table(res)
    for name, (text, rows, header) in tables.items():
        write_text(paths[f"{name}_md"], text)
        write_csv(paths[f"{name}_csv"], header, rows)

    check = learning_check(res, runs)
    check_md, check_rows, check_header = learning_check_outputs(check)
    write_text(paths["learning_check_md"], check_md)
    write_csv(paths["learning_check_csv"], check_header, check_rows)
    write_text(paths["learning_check_json"], json.dumps(check, indent=1) + "\n")

    write_text(paths["metrics"], json.dumps(headline_metrics(res), indent=1, sort_keys=True) + "\n")
    write_csv(paths["fewshot_points"], ["model", "benchmark", "shots", "top1"], points)
    logs = {}
    for run, info in runs.items():
        path = Path(info.get("log") or f"results/train/{run}/log.csv")
        if path.is_file():
            logs[run] = read_training_log(path)
        else:
            log.warning("run %s: no training log at %s; its curves are left out", run, path)
    write_csv(paths["training_log"], ["run", "step", "loss", "lr"],
              [{"run": run, **r} for run, rows in logs.items() for r in rows])

    cap_summary = json.loads(Path(captions_summary).read_text()) if captions_summary and Path(
        captions_summary).is_file() else {}
    groups = {name: d.get("group", "?") for name, d in (cap_summary.get("datasets") or {}).items()}
    stats = caption_stats(captions, groups)
    dedup_summaries = {run: json.loads(Path(p).read_text()) for run, p in (dedup or {}).items() if Path(p).is_file()}

    plot_training(paths["training_png"], logs)
    plot_fewshot(paths["fewshot_png"], res, tables["fewshot"][1])
    plot_confusion(paths["counting_png"], res)
    plot_caption_lengths(paths["caption_lengths_png"], stats)
    plot_top_words(paths["top_words_png"], stats)
    plot_dedup(paths["dedup_png"], dedup_summaries)

    write_text(paths["index"], index_md(res, tables, check_md, cap_summary, dedup_summaries, logs))
    return paths


def _dedup_row(run: str, summary: dict) -> list:
    t = summary.get("thresholds") or {}
    dup, leak = t.get("training_duplicates") or {}, t.get("test_leaks") or {}
    return [run, summary.get("images"), summary.get("removed"), summary.get("kept"),
            f"{dup['removed']} (< {dup['threshold']})" if dup else "–",
            f"{leak['removed']} (< {leak['threshold']})" if leak else "–",
            leak.get("below_duplicate_threshold", "–")]


def index_md(res: Results, tables: dict, check_md: str, cap_summary: dict, dedup: dict, logs: dict) -> str:
    lines = ["# RemoteCLIP reproduction: report\n\n"]
    if res.models:
        lines.append("## Models\n\n")
        lines.append(md_table(["model", "what", "paper row"],
                              [[n, m["origin"], m.get("paper") or "–"] for n, m in res.models.items()]))
    else:
        lines.append(NO_EVAL + "\n")
    lines.append("\n## Tables\n\n")
    titles = {"retrieval": "cross-modal retrieval (Table II)", "zeroshot": "zero-shot top-1 (Table III)",
              "linear_probe": "linear probe top-1 (Table IV)", "knn": "k-NN top-1 (Table IV)",
              "fewshot": "few-shot top-1 (Fig. 9)", "counting": "counting top-1..10 (Fig. 8)"}
    for name, title in titles.items():
        count = len(res.benches(name))
        status = f"{count} benchmark(s)" if count else "no data"
        lines.append(f"- [{title}]({OUTPUTS[name + '_md']}) ([CSV]({OUTPUTS[name + '_csv']})): {status}\n")
    lines.append(f"- [learning check]({OUTPUTS['learning_check_md']}) ([CSV]({OUTPUTS['learning_check_csv']}), "
                 f"[JSON]({OUTPUTS['learning_check_json']}))\n")
    lines.append(f"- DVC: [{OUTPUTS['metrics']}]({OUTPUTS['metrics']}), [{OUTPUTS['training_log']}]"
                 f"({OUTPUTS['training_log']}), [{OUTPUTS['fewshot_points']}]({OUTPUTS['fewshot_points']})\n")

    lines.append("\n## Data\n\n")
    datasets = cap_summary.get("datasets") or {}
    if datasets:
        lines.append(md_table(["source", "group", "images", "captioned", "captions", "skipped"],
                              [[n, d.get("group", "?"), d.get("images", "–"), d.get("captioned", "–"),
                                d.get("captions", "–"), d.get("skipped_total", "–")] for n, d in datasets.items()]))
    else:
        lines.append("No caption summary.\n")
    if dedup:
        lines.append("\nDe-duplication per run (pHash; training duplicates and test-split leakage, each with "
                     "its threshold: removed when the Hamming distance is below it):\n\n")
        lines.append(md_table(["run", "images", "removed", "kept", "training duplicates", "test leaks",
                               "leaks the duplicate threshold alone finds"], [_dedup_row(run, s) for run, s in dedup.items()]))
    else:
        lines.append("\nNo de-duplication summary (no runs configured).\n")
    if logs:
        lines.append("\nTraining: " + ", ".join(f"{run} ({rows[-1]['step']} steps, final logged loss "
                                                f"{rows[-1]['loss']:.3f})" for run, rows in logs.items() if rows) + "\n")

    lines.append("\n" + check_md.replace("# Learning check", "## Learning check", 1).replace("\n## ", "\n### "))
    lines.append("\n## Plots\n\n")
    for name, title in (("training_png", "training loss and learning rate"), ("fewshot_png", "few-shot curves"),
                        ("counting_png", "counting confusion matrices"),
                        ("caption_lengths_png", "caption length per source group"),
                        ("top_words_png", "top words per source"), ("dedup_png", "de-duplication")):
        lines.append(f"### {title}\n\n![{title}]({OUTPUTS[name]})\n\n")
    return "".join(lines)
