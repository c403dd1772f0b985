"""The report's plots (plots/*.png): training loss and learning rate, few-shot curves,
counting confusion matrices, caption lengths and top words per source, and what the
de-duplication removed. A plot without data is still written, as a PNG saying "no data",
so that every declared output exists."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from .results import Results


def _plt():
    # imported on use: Snakemake imports this package while it parses the workflow (common.smk)
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
        ax.set_title(f"{model}\n{bench}, {variant}" + (f", top-1 {top1:.1f}%" if top1 is not None else ""), fontsize=8)
        ax.set_xlabel("predicted count", fontsize=7)
        if cols.index(model) == 0:
            ax.set_ylabel("true count", fontsize=7)
    for r in range(len(rows)):
        for c in range(len(cols)):
            if not axes[r][c].images:
                axes[r][c].axis("off")
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="share of the true count's samples")
    _save(fig, path)


def plot_caption_lengths(path: Path, stats: dict[str, dict]) -> None:
    groups = {
        "RET (human captions)": [s for s in stats.values() if s["group"] == "RET"],
        "B2C (DET + SEG boxes)": [s for s in stats.values() if s["group"] in ("DET", "SEG")],
    }
    summed: dict[str, Counter] = {
        name: sum((s["lengths"] for s in members), Counter()) for name, members in groups.items()
    }
    lengths: dict[str, Counter] = {name: c for name, c in summed.items() if c}
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
        ax.hist(
            values,
            bins=bins,
            weights=[w / total for w in weights],
            histtype="step",
            linewidth=2,
            label=f"{name}: {total} captions, mean {mean:.1f} words",
        )
    ax.set(title="caption length (paper Fig. 4)", xlabel="words per caption", ylabel="share of captions")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_top_words(path: Path, stats: dict[str, dict], n: int = 12) -> None:
    sources = sorted(
        (s for s in stats if stats[s]["words"]),
        key=lambda s: (
            ("RET", "DET", "SEG").index(stats[s]["group"]) if stats[s]["group"] in ("RET", "DET", "SEG") else 3
        ),
    )
    if not sources:
        return no_data_png(path, "Top words per source", "no caption files")
    fig, axes = _grid(len(sources), cols=3, size=(4.2, 3.4))
    for ax, source in zip(axes, sources):
        common = stats[source]["words"].most_common(n)[::-1]
        ax.barh(
            [w for w, _ in common],
            [c for _, c in common],
            color="tab:blue" if stats[source]["group"] == "RET" else "tab:orange",
        )
        ax.set_title(f"{source} ({stats[source]['group']})", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("occurrences", fontsize=7)
    fig.suptitle("most frequent words per source (paper Fig. 5, stop words left out)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_dedup(path: Path, summaries: dict[str, dict]) -> None:
    if not summaries:
        return no_data_png(path, "De-duplication", "no run, so no de-duplication summary")
    reasons = sorted(
        {p["reason"] for s in summaries.values() for p in s.get("pairs") or []},
        key=lambda r: (r != "training duplicate", r),
    )
    colors = {r: f"C{i}" for i, r in enumerate(reasons)}
    fig, axes = _grid(
        len(summaries), cols=2, size=(6.0, 0.45 * max(len(s.get("per_source") or {}) for s in summaries.values()) + 1.8)
    )
    for ax, (run, summary) in zip(axes, summaries.items()):
        per_source = summary.get("per_source") or {}
        sources = sorted(per_source)
        labels = [f"{s} ({per_source[s]['kept']}/{per_source[s]['images']} kept)" for s in sources]
        left = [0] * len(sources)
        for reason in reasons:
            counts = [
                sum(p["removed"] for p in summary.get("pairs") or [] if p["source"] == s and p["reason"] == reason)
                for s in sources
            ]
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
