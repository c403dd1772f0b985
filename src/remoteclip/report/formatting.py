"""How the report prints numbers and writes files: markdown tables, CSV (significant digits)
and text files, each in a folder created on demand."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path


def num_text(v: float | None, signed: bool = False) -> str:
    """A number as the markdown tables print it: two decimals, signed for differences, "–" when missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:+.2f}" if signed else f"{v:.2f}"


def full_mean(values: Sequence[float | None]) -> float | None:
    """The mean, only where every value is present: a row with a gap has no average."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if values and len(present) == len(values) else None


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _csv_value(v):
    # significant digits, not decimals: learning rates are ~1e-5
    return "" if v is None else float(f"{v:.6g}") if isinstance(v, float) else v


def write_csv(path: Path, header: Sequence[str], rows: Iterable[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(header), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row.get(k)) for k in header})


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
