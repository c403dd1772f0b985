"""The paper's published numbers: reads src/remoteclip/data/paper_results.csv (Tables II-IV
and the few-shot RN50 table, in summary.csv's layout) and holds what the paper names and
orders differently from our catalogue, and Table V's averages."""

from __future__ import annotations

import csv
import io
from importlib import resources
from typing import Any

# the paper's column order (Tables III/IV) and its names where our catalogue spells them otherwise
PAPER_ORDER = [
    "RSITMD",
    "RSICD",
    "UCM-Captions",
    "RSI-CB128",
    "RSI-CB256",
    "SIRI-WHU",
    "EuroSAT",
    "MLRSNet",
    "PatternNet",
    "RESISC45",
    "AID",
    "RSSCN7",
    "Optimal-31",
    "RSC11",
    "WHU-RS19",
]
PAPER_LABELS = {"SIRI-WHU": "WHU-earth", "RSSCN7": "RS2800", "Optimal-31": "OPTIMAL-31", "UCM-Captions": "UCM"}

# Table V's dataset ablation (RN50), the published answer to "do DET/SEG captions help?";
# only the averages are published, so they live here and not in paper_results.csv
TABLE_V_SOURCES: dict[str, Any] = {
    "backbone": "RN50",
    "RET only": {"retrieval": 36.32, "zeroshot": 48.75},
    "RET + DET + SEG": {"retrieval": 42.01, "zeroshot": 53.46},
}


def paper_results() -> list[dict]:
    """The published numbers (Tables II-IV, the few-shot RN50 table) in summary.csv's layout."""
    text = resources.files("remoteclip").joinpath("data/paper_results.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        row["value"] = float(row["value"])
    return rows


def paper_models() -> list[str]:
    return sorted({row["model"] for row in paper_results()})
