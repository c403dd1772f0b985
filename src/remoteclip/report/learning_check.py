"""The learning check (learning_check.md / .csv / .json): did training move each run model
away from where it started (trained minus its initialisation, beside chance), and do the
DET/SEG captions help (a RET + DET/SEG run against a RET-only run from the same initial
weights, beside the paper's Table V)."""

from __future__ import annotations

from .formatting import md_table, num_text
from .paper import TABLE_V_SOURCES
from .results import Results

# the learning check's metrics: (task, metric, label)
CHECKED = [
    ("zeroshot", "acc1", "zero-shot top-1"),
    ("retrieval", "mean_recall", "retrieval mean recall"),
    ("counting", "words.top1", "counting top-1 (words)"),
    ("counting", "digits.top1", "counting top-1 (digits)"),
]


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
            chance = (
                (100.0 / n if (n := res.classes(bench)) else None)
                if task == "zeroshot"
                else 10.0
                if task == "counting"
                else None
            )
            rows.append(
                {
                    "benchmark": bench,
                    "task": task,
                    "metric": metric,
                    "label": label,
                    "a": va,
                    "b": vb,
                    "difference": va - vb,
                    "chance": chance,
                }
            )
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
        pairs.append(
            {
                "model": model,
                "run": info["run"],
                "baseline": baseline,
                "relation": relation,
                "rows": rows,
                "improved": sum(r["difference"] > 0 for r in rows),
                "compared": len(rows),
                "above_chance": sum(r["trained"] > r["chance"] for r in rows if r["chance"] is not None),
                "with_chance": sum(r["chance"] is not None for r in rows),
            }
        )

    run_model: dict[str, str] = {}
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
            if set(spec_b.get("groups") or []) != {"RET"} or spec_b.get("start") != (runs.get(run_a) or {}).get(
                "start"
            ):
                continue
            rows = _differences(res, a, b)
            for r in rows:
                r["with_det_seg"], r["ret_only"] = r.pop("a"), r.pop("b")
            avg = _averages(rows)
            sources.append(
                {
                    "with_det_seg": a,
                    "ret_only": b,
                    "runs": [run_a, run_b],
                    "groups": sorted(groups_a),
                    "rows": rows,
                    "average_difference": avg,
                    "statement": _sources_statement(a, b, avg),
                }
            )
    paper = {
        "backbone": TABLE_V_SOURCES["backbone"],
        **{
            task: TABLE_V_SOURCES["RET + DET + SEG"][task] - TABLE_V_SOURCES["RET only"][task]
            for task in ("retrieval", "zeroshot")
        },
    }
    return {"pairs": pairs, "sources": sources, "paper_table_v": {**TABLE_V_SOURCES, "difference": paper}}


def _sources_statement(a: str, b: str, avg: dict) -> str:
    parts = [
        f"{label} {_direction(avg[task])} by {abs(avg[task]):.2f} points"
        if avg[task] is not None
        else f"{label} not measured"
        for task, label in (
            ("zeroshot", "zero-shot top-1 (mean over benchmarks)"),
            ("retrieval", "retrieval mean recall (mean)"),
        )
    ]
    measured = [v for v in avg.values() if v is not None]
    verdict = (
        "the DET/SEG captions helped on every measured average"
        if measured and all(v > 0 for v in measured)
        else "the DET/SEG captions did not help on any measured average"
        if measured and all(v <= 0 for v in measured)
        else "the DET/SEG captions helped on some averages and not on others"
        if measured
        else "no shared benchmark to compare"
    )
    return f"{a} (with DET/SEG) vs {b} (RET only): " + "; ".join(parts) + f". Here {verdict}."


def learning_check_outputs(check: dict) -> tuple[str, list[dict], list[str]]:
    header = [
        "comparison",
        "model",
        "baseline",
        "relation",
        "benchmark",
        "task",
        "metric",
        "value",
        "baseline_value",
        "difference",
        "chance",
    ]
    lines = [
        "# Learning check\n\n",
        "Did training move the model away from where it started? Each run model against its initialisation "
        "(trained - initial, percentage points), with chance level (zero-shot: 100 / classes; counting "
        "top-1: 10 %).\n",
    ]
    csv_rows = []
    if not check["pairs"]:
        lines.append(
            "\nNo run model has its initialisation evaluated (add `{run: X, init: true}` to "
            "`evaluation.models`, or the pretrained model the run starts from).\n"
        )
    for pair in check["pairs"]:
        lines.append(f"\n## {pair['model']} vs {pair['baseline']} ({pair['relation']})\n\n")
        if not pair["rows"]:
            lines.append("No benchmark scored for both.\n")
            continue
        lines.append(
            f"Better than its initialisation on {pair['improved']} of {pair['compared']} numbers; above "
            f"chance on {pair['above_chance']} of {pair['with_chance']} with a chance level.\n\n"
        )
        lines.append(
            md_table(
                ["benchmark", "metric", "trained", "initial", "trained − initial", "chance"],
                [
                    [
                        r["benchmark"],
                        r["label"],
                        num_text(r["trained"]),
                        num_text(r["initial"]),
                        num_text(r["difference"], True),
                        num_text(r["chance"]),
                    ]
                    for r in pair["rows"]
                ],
            )
        )
        csv_rows += [
            {
                "comparison": "trained - initial",
                "model": pair["model"],
                "baseline": pair["baseline"],
                "relation": pair["relation"],
                "benchmark": r["benchmark"],
                "task": r["task"],
                "metric": r["metric"],
                "value": r["trained"],
                "baseline_value": r["initial"],
                "difference": r["difference"],
                "chance": r["chance"],
            }
            for r in pair["rows"]
        ]

    table_v = check["paper_table_v"]
    lines.append("\n## Do the DET/SEG captions help? (paper Table V)\n\n")
    lines.append(
        f"Paper ({table_v['backbone']}, dataset ablation): RET + DET + SEG vs RET only changes the "
        f"retrieval average by {table_v['difference']['retrieval']:+.2f} and the zero-shot average by "
        f"{table_v['difference']['zeroshot']:+.2f} points.\n\n"
    )
    if not check["sources"]:
        lines.append(
            "Not measured here: it needs an evaluated run on RET + DET/SEG sources and one on RET only "
            "from the same initial weights.\n"
        )
    for comp in check["sources"]:
        lines.append(comp["statement"] + "\n\n")
        if comp["rows"]:
            lines.append(
                md_table(
                    ["benchmark", "metric", comp["with_det_seg"], comp["ret_only"], "difference"],
                    [
                        [
                            r["benchmark"],
                            r["label"],
                            num_text(r["with_det_seg"]),
                            num_text(r["ret_only"]),
                            num_text(r["difference"], True),
                        ]
                        for r in comp["rows"]
                    ],
                )
                + "\n"
            )
        csv_rows += [
            {
                "comparison": "with DET/SEG - RET only",
                "model": comp["with_det_seg"],
                "baseline": comp["ret_only"],
                "relation": "same initial weights, RET-only sources",
                "benchmark": r["benchmark"],
                "task": r["task"],
                "metric": r["metric"],
                "value": r["with_det_seg"],
                "baseline_value": r["ret_only"],
                "difference": r["difference"],
                "chance": r["chance"],
            }
            for r in comp["rows"]
        ]
    return "".join(lines), csv_rows, header
