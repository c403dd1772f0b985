"""The paper's published numbers: src/remoteclip/data/paper_results.csv (Tables II-IV and the
few-shot RN50 table, in summary.csv's layout; read by data.published) and src/remoteclip/data/table_v.csv
(Table V's ablations, averages only), and holds what the paper names and orders differently
from our catalogue."""

from __future__ import annotations

import csv
import io
from importlib import resources

from ..data.published import paper_results  # the report's `paper_results` (the zoo reads the same)

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


def table_v() -> list[dict]:
    """Table V's rows in the paper's order: ablation, setting, backbone, the retrieval and
    zero-shot averages, `label` (what an evaluation model's `paper:` names to fill the row) and
    `same_as` (a Tables II-IV row of the same configuration, whose models fill it as well)."""
    text = resources.files("remoteclip").joinpath("data/table_v.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        row["retrieval"], row["zeroshot"] = float(row["retrieval"]), float(row["zeroshot"])
        row["label"] = table_v_label(row["ablation"], row["setting"])
    return rows


def table_v_label(ablation: str, setting: str) -> str:
    return f"Table V {ablation}: {setting}"


def paper_models() -> list[str]:
    """Every name `paper:` may give: the rows of Tables II-IV and of Table V."""
    return sorted({row["model"] for row in paper_results()} | {row["label"] for row in table_v()})


def _dataset_ablation() -> dict:
    """Table V's dataset ablation (RN50), the published answer to "do DET/SEG captions help?"
    that the learning check sets beside ours."""
    rows = {r["setting"]: r for r in table_v() if r["ablation"] == "dataset"}
    pick = {"RET only": "RET-3", "RET + DET + SEG": "SEG-4 + DET-10 + RET-3"}
    return {
        "backbone": rows["RET-3"]["backbone"],
        **{name: {t: rows[s][t] for t in ("retrieval", "zeroshot")} for name, s in pick.items()},
    }


TABLE_V_SOURCES = _dataset_ablation()
