"""One long CSV across models and benchmarks: model, benchmark, task, metric, value, source.
The paper's published numbers (src/remoteclip/data/paper_results.csv) use the same layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

FIELDS = ["model", "benchmark", "task", "metric", "value", "source"]


def flatten(metrics: dict, prefix: str = "") -> list[tuple[str, float]]:
    """Nested metrics as (dotted name, number); matrices (confusion) are left out."""
    rows = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += flatten(value, name + ".")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append((name, float(value)))
    return rows


def result_rows(path: str | Path) -> list[dict]:
    result = json.loads(Path(path).read_text())
    return [
        {
            "model": result["model"],
            "benchmark": result["dataset"],
            "task": result["task"],
            "metric": name,
            "value": round(value, 4),
            "source": "this workflow",
        }
        for name, value in flatten(result["metrics"])
    ]


def write_summary(paths: list[str | Path], out: str | Path) -> list[dict]:
    rows = [row for path in sorted(map(str, paths)) for row in result_rows(path)]
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return rows
