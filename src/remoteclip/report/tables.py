"""The paper-style tables, one function per table of the paper: cross-modal retrieval
(Table II), zero-shot (Table III), linear probe and k-NN (Table IV), few-shot (Fig. 9) and
counting (Figs. 7-8). Each returns (markdown, CSV rows, CSV header) for tables/<name>.md
and tables/<name>.csv; our rows sit beside the paper's wherever a model maps to one."""

from __future__ import annotations

from collections.abc import Sequence

from .formatting import full_mean, md_table, num_text
from .results import Results

RET_METRICS = [
    ("image_to_text_R@1", "I→T R@1"),
    ("image_to_text_R@5", "I→T R@5"),
    ("image_to_text_R@10", "I→T R@10"),
    ("text_to_image_R@1", "T→I R@1"),
    ("text_to_image_R@5", "T→I R@5"),
    ("text_to_image_R@10", "T→I R@10"),
    ("mean_recall", "mean R"),
]


# ---------------------------------------------------------------- comparison rows


def compared(res: Results, models: Sequence[str], columns: Sequence[tuple], average: bool = False) -> list[dict]:
    """Per model: our row; where it maps to a paper row with numbers for these columns, the
    paper's row and ours - paper. `columns` are (key, benchmark, task, metric)."""
    rows = []
    for model in models:
        info = res.models[model]
        ours = {key: res.get(model, b, t, m) for key, b, t, m in columns}
        base = {"model": model, "row": "ours", "from": info["origin"], "paper_model": info.get("paper") or ""}
        rows.append({**base, **ours})
        published = {key: res.published(model, b, t, m) for key, b, t, m in columns}
        if not any(published.values()):
            continue
        sources = sorted({p[1] for p in published.values() if p})
        paper = {key: p[0] if p else None for key, p in published.items()}
        rows.append({**base, "model": info["paper"], "row": "paper", "from": ", ".join(sources), **paper})
        rows.append(
            {
                **base,
                "row": "ours - paper",
                "from": "",
                **{k: _difference(ours[k], paper[k]) for k in ours},
            }
        )
    if average:
        keys = [c[0] for c in columns]
        for row in rows:
            if row["row"] != "ours - paper":
                row["average"] = full_mean([row[k] for k in keys])
        for i, row in enumerate(rows):
            if row["row"] == "ours - paper":
                ours_avg, paper_avg = rows[i - 2].get("average"), rows[i - 1].get("average")
                row["average"] = ours_avg - paper_avg if ours_avg is not None and paper_avg is not None else None
    return rows


def _md_rows(rows: list[dict], keys: Sequence[str], cell=None) -> list[list[str]]:
    out = []
    for row in rows:
        signed = row["row"] == "ours - paper"
        cells = [cell(row, k) if cell else num_text(row.get(k), signed) for k in keys]
        out.append([row["model"] if row["row"] != "ours - paper" else "", row["row"], row["from"], *cells])
    return out


# ---------------------------------------------------------------- the tables


NO_EVAL = "No evaluation results (no `evaluation.models` configured, or none scored yet)."


def retrieval_table(res: Results) -> tuple[str, list[dict], list[str]]:
    benches = res.benches("retrieval")
    header = ["benchmark", "model", "row", "from", "paper_model"] + [m for m, _ in RET_METRICS]
    parts = [
        "# Cross-modal retrieval (paper Table II)\n\n",
        "Recall@k in % on each test split, image-to-text (I→T) and text-to-image (T→I); mean R is the "
        "mean of the six. Rows `paper` and `ours - paper` follow every model mapped to a paper row.\n",
    ]
    csv_rows = []
    if not benches:
        parts.append("\nNo retrieval benchmark was evaluated.\n" if res.values else f"\n{NO_EVAL}\n")
    for b in benches:
        columns = [(m, b, "retrieval", m) for m, _ in RET_METRICS]
        rows = compared(res, res.models_with("retrieval", [b]), columns)
        csv_rows += [{"benchmark": b, **r} for r in rows]
        parts.append(f"\n## {res.label(b)}\n\n")
        parts.append(
            md_table(
                ["model", "row", "from"] + [label for _, label in RET_METRICS],
                _md_rows(rows, [m for m, _ in RET_METRICS]),
            )
        )
        parts.append(_tie_note(res, b))
    return "".join(parts), csv_rows, header


def _tie_note(res: Results, benchmark: str) -> str:
    """The range of mean recall that another order of exact ties (identical captions) could give."""
    ranges = []
    for model in res.models_with("retrieval", [benchmark]):
        low = res.get(model, benchmark, "retrieval", "ties.mean_recall.lowest")
        high = res.get(model, benchmark, "retrieval", "ties.mean_recall.highest")
        if low is not None and high is not None:
            ranges.append(f"{model} {low:.2f}–{high:.2f}")
    if not ranges:
        return ""
    return (
        "\nMean R under any order of exact ties (identical captions score alike; the table uses "
        "torch.topk's order, as the official script): " + ", ".join(ranges) + ".\n"
    )


def dataset_table(res: Results, task: str, title: str, what: str) -> tuple[str, list[dict], list[str]]:
    """Top-1 accuracy per dataset (columns) and model (rows), with the average column."""
    benches = res.benches(task)
    header = ["model", "row", "from", "paper_model"] + benches + ["average"]
    parts = [
        f"# {title}\n\n",
        f"{what} Average: the mean over the columns, given only where a row has every "
        "column. Rows `paper` and `ours - paper` follow every model mapped to a paper row.\n",
    ]
    if not benches:
        parts.append(f"\nNo classification benchmark was evaluated with {task}.\n" if res.values else f"\n{NO_EVAL}\n")
        return "".join(parts), [], header
    rows = compared(res, res.models_with(task, benches), [(b, b, task, "acc1") for b in benches], average=True)
    if task == "zeroshot":
        chance = {b: 100.0 / n if (n := res.classes(b)) else None for b in benches}
        rows.append(
            {
                "model": "chance",
                "row": "chance",
                "from": "100 / classes",
                "paper_model": "",
                **chance,
                "average": full_mean(list(chance.values())),
            }
        )
    parts.append(
        "\n"
        + md_table(
            ["model", "row", "from"] + [res.label(b) for b in benches] + ["average"],
            _md_rows(rows, benches + ["average"]),
        )
    )
    return "".join(parts), rows, header


def zeroshot_table(res: Results) -> tuple[str, list[dict], list[str]]:
    return dataset_table(
        res,
        "zeroshot",
        "Zero-shot classification (paper Table III)",
        "Top-1 accuracy in % with the prompt(s) of `evaluation.templates`.",
    )


def linear_probe_table(res: Results) -> tuple[str, list[dict], list[str]]:
    return dataset_table(
        res,
        "linear_probe",
        "Linear probe (paper Table IV, Linear)",
        "Top-1 accuracy in % of a logistic-regression probe on frozen image features (full train split). The "
        "paper's printed average is not the mean of its row (reference §6.4); ours is.",
    )


def knn_table(res: Results) -> tuple[str, list[dict], list[str]]:
    return dataset_table(
        res,
        "knn",
        "k-NN (paper Table IV, k-NN)",
        "Top-1 accuracy in % of k-NN on frozen image features (k and temperature in the result files).",
    )


def fewshot_table(res: Results) -> tuple[str, list[dict], list[str], list[dict]]:
    benches = res.benches("fewshot")
    shots = sorted({int(k[3].split(".")[0]) for k in res.values if k[2] == "fewshot" and k[3].endswith(".mean")})
    header = ["benchmark", "model", "row", "from", "paper_model"] + [c for s in shots for c in (f"{s}", f"{s}_std")]
    parts = [
        "# Few-shot linear probe (paper Fig. 9)\n\n",
        "Top-1 accuracy in %, mean ± standard deviation over the sampling seeds, per number of labelled "
        "images per class. The paper publishes numbers only for RemoteCLIP RN50 (maintainer, issue #3; "
        "16 shots incomplete).\n",
    ]
    csv_rows, points = [], []
    if not benches:
        parts.append("\nNo few-shot results.\n" if res.values else f"\n{NO_EVAL}\n")
    for b in benches:
        columns = [(f"{s}", b, "fewshot", f"{s}.mean") for s in shots]
        rows = compared(res, res.models_with("fewshot", [b]), columns)
        for row in rows:
            if row["row"] == "ours":
                for s in shots:
                    row[f"{s}_std"] = res.get(row["model"], b, "fewshot", f"{s}.std")
                    if row[f"{s}"] is not None:
                        points.append({"model": row["model"], "benchmark": b, "shots": s, "top1": row[f"{s}"]})
        csv_rows += [{"benchmark": b, **r} for r in rows]

        def cell(row, key):
            if row["row"] == "ours" and row.get(key) is not None:
                std = row.get(f"{key}_std")
                return f"{row[key]:.2f} ± {std:.2f}" if std is not None else f"{row[key]:.2f}"
            return num_text(row.get(key), row["row"] == "ours - paper")

        parts.append(f"\n## {res.label(b)}\n\n")
        parts.append(
            md_table(
                ["model", "row", "from"] + [f"{s}-shot" for s in shots], _md_rows(rows, [f"{s}" for s in shots], cell)
            )
        )
    return "".join(parts), csv_rows, header, points


def counting_table(res: Results) -> tuple[str, list[dict], list[str]]:
    benches = res.benches("counting")
    ks = list(range(1, 11))
    header = ["benchmark", "variant", "model", "row", "from"] + [f"top{k}" for k in ks]
    parts = [
        "# Object counting (RemoteCount, paper Figs. 7-8)\n\n",
        'Top-k accuracy in % of ranking the ten captions "There are {one..ten} ..." (words) or '
        '"{1..10}" (digits); chance is k/10. The paper gives these only as a figure, so there is no '
        "published row.\n",
    ]
    csv_rows = []
    if not benches:
        parts.append("\nNo counting benchmark was evaluated.\n" if res.values else f"\n{NO_EVAL}\n")
    for b in benches:
        variants = sorted(
            {k[3].split(".")[0] for k in res.values if k[1] == b and k[2] == "counting"},
            key=lambda v: (v != "words", v),
        )
        for variant in variants:
            rows = []
            for model in res.models_with("counting", [b]):
                rows.append(
                    {
                        "benchmark": b,
                        "variant": variant,
                        "model": model,
                        "row": "ours",
                        "from": res.models[model]["origin"],
                        **{f"top{k}": res.get(model, b, "counting", f"{variant}.top{k}") for k in ks},
                    }
                )
            rows.append(
                {
                    "benchmark": b,
                    "variant": variant,
                    "model": "chance",
                    "row": "chance",
                    "from": "k / 10",
                    **{f"top{k}": 10.0 * k for k in ks},
                }
            )
            csv_rows += rows
            parts.append(f"\n## {res.label(b)}, {variant}\n\n")
            parts.append(
                md_table(
                    ["model", "row", "from"] + [f"top-{k}" for k in ks],
                    [[r["model"], r["row"], r["from"], *(num_text(r[f"top{k}"]) for k in ks)] for r in rows],
                )
            )
    return "".join(parts), csv_rows, header


def _difference(ours: float | None, paper: float | None) -> float | None:
    return ours - paper if ours is not None and paper is not None else None
