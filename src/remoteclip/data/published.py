"""The RemoteCLIP paper's published numbers, paper_results.csv (Tables II-IV and the few-shot
RN50 table, in summary.csv's layout): their one copy, read by the report (`report.paper`) and
by the model zoo, whose entries name their row (`zoo.paper_row_numbers`). Plain Python, so the
jobs that read the zoo import nothing of the report."""

from __future__ import annotations

import csv
import io
from importlib import resources

# the paper, as the model zoo cites it beside each number (the CSV's `source` says "paper Table II")
CITATION = "RemoteCLIP paper (Liu et al., TGRS 2024)"


def paper_results() -> list[dict]:
    """The published numbers (Tables II-IV, the few-shot RN50 table) in summary.csv's layout."""
    text = resources.files("remoteclip.data").joinpath("paper_results.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        row["value"] = float(row["value"])
    return rows
