"""Reading results: our numbers (results/eval/summary.csv), the per-task result JSON
(results/eval/<model>/<dataset>.<task>.json: confusion matrices, class lists, model specs),
the paper's numbers beside them, and training logs (results/train/<run>/log.csv)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from .models import infer_model
from .paper import PAPER_LABELS, PAPER_ORDER, paper_results

KIND_ORDER = {"pretrained": 0, "init": 0, "run": 1, "released": 2, "checkpoint": 3}


class Results:
    """Our numbers, the paper's, and what the report knows about models and benchmarks."""

    def __init__(
        self, summary: str | Path | None, results: Iterable[str | Path], models: dict | None, benchmarks: dict | None
    ):
        self.values: dict[tuple, float] = {}
        if summary and Path(summary).is_file():
            with open(summary, newline="") as fh:
                for row in csv.DictReader(fh):
                    self.values[(row["model"], row["benchmark"], row["task"], row["metric"])] = float(row["value"])
        self._scored = {k[:3] for k in self.values}
        self.json: dict[tuple, dict] = {}
        for path in results:
            doc = json.loads(Path(path).read_text())
            self.json[(doc["model"], doc["dataset"], doc["task"])] = doc
        models = dict(models or {})
        seen = {k[0] for k in self.values} | {k[0] for k in self.json}
        for name in sorted(seen - set(models)):
            spec = next((d.get("model_spec") or {} for (m, _, _), d in self.json.items() if m == name), {})
            models[name] = infer_model(name, spec)
        arch_rank: dict[str | None, int] = {}
        for m in models.values():
            arch_rank.setdefault(m.get("arch"), len(arch_rank))
        position = {name: i for i, name in enumerate(models)}
        self.models = {
            name: models[name]
            for name in sorted(
                models,
                key=lambda n: (arch_rank[models[n].get("arch")], KIND_ORDER.get(models[n]["kind"], 9), position[n]),
            )
        }
        self.benchmarks = dict(benchmarks or {})
        self.paper: dict[tuple, tuple[float, str]] = {
            (r["model"], r["benchmark"], r["task"], r["metric"]): (r["value"], r["source"]) for r in paper_results()
        }

    def get(self, model, benchmark, task, metric) -> float | None:
        return self.values.get((model, benchmark, task, metric))

    def has(self, model, benchmark, task) -> bool:
        return (model, benchmark, task) in self._scored

    def benches(self, task: str) -> list[str]:
        found = {k[1] for k in self.values if k[2] == task}
        return sorted(
            found,
            key=lambda b: (
                PAPER_ORDER.index(self.paper_bench(b)) if self.paper_bench(b) in PAPER_ORDER else len(PAPER_ORDER),
                b,
            ),
        )

    def models_with(self, task: str, benches: Sequence[str]) -> list[str]:
        return [m for m in self.models if any(self.has(m, b, task) for b in benches)]

    def paper_bench(self, benchmark: str) -> str:
        return (self.benchmarks.get(benchmark) or {}).get("paper") or benchmark

    def label(self, benchmark: str) -> str:
        paper = self.paper_bench(benchmark)
        shown = PAPER_LABELS.get(paper, paper)
        return benchmark if shown == benchmark else f"{benchmark} ({shown})"

    def published(self, model: str, benchmark: str, task: str, metric: str) -> tuple[float, str] | None:
        paper = self.models[model].get("paper")
        return self.paper.get((paper, self.paper_bench(benchmark), task, metric)) if paper else None

    def classes(self, benchmark: str) -> int | None:
        for (_, b, task), doc in self.json.items():
            names = (doc.get("protocol") or {}).get("classnames")
            if b == benchmark and task == "zeroshot" and names:
                return len(names)
        return None


def read_training_log(path: str | Path) -> list[dict]:
    with open(path, newline="") as fh:
        return [
            {"step": int(float(r["step"])), "loss": float(r["loss"]), "lr": float(r["lr"])} for r in csv.DictReader(fh)
        ]
