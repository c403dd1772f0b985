"""The Table V page (tables/table_v.md and .csv): the paper's five ablations (dataset,
initialisation, backbone, preprocessing, loss), each row with the paper's retrieval and
zero-shot averages and, for every evaluated model that reproduces the row, ours and the
difference.

The averages are Table V's: retrieval, the mean recall averaged over RSITMD, RSICD and UCM
(the three retrieval test splits); zero-shot, the top-1 accuracy averaged over the 12
classification datasets. An average is given only where a model has every one of its sets.

A model reproduces a row when its `paper:` names the row ("Table V loss: SigLIP"), or names
the Tables II-IV row that the Table V row is the same configuration as (`same_as` in
src/remoteclip/data/table_v.csv: e.g. every "RemoteCLIP RN50" model fills the RN50 rows of
full data, CLIP initialisation and both towers pretrained), so one run answers all of them.
"""

from __future__ import annotations

from .formatting import full_mean, md_table, num_text
from .paper import PAPER_ORDER, table_v
from .results import Results

RETRIEVAL_SETS = PAPER_ORDER[:3]  # RSITMD, RSICD, UCM-Captions
ZEROSHOT_SETS = PAPER_ORDER[3:]  # the 12 classification datasets
HEADER = [
    "ablation",
    "setting",
    "backbone",
    "model",
    "paper_retrieval",
    "ours_retrieval",
    "diff_retrieval",
    "retrieval_sets",
    "paper_zeroshot",
    "ours_zeroshot",
    "diff_zeroshot",
    "zeroshot_sets",
    "note",
]


def _ours(res: Results, model: str, task: str, metric: str, sets: list[str]) -> tuple[float | None, int]:
    """(the mean over `sets`, or None unless every one was scored; how many were scored)."""
    by_paper = {res.paper_bench(b): b for b in reversed(res.benches(task))}  # the first of duplicates wins
    values = [res.get(model, by_paper[s], task, metric) if s in by_paper else None for s in sets]
    found = sum(v is not None for v in values)
    return full_mean(values), found


def averages(res: Results, model: str) -> dict:
    """Our Table V averages for one model, and how many of their sets it has."""
    ret, ret_n = _ours(res, model, "retrieval", "mean_recall", RETRIEVAL_SETS)
    zs, zs_n = _ours(res, model, "zeroshot", "acc1", ZEROSHOT_SETS)
    return {
        "ours_retrieval": ret,
        "retrieval_sets": f"{ret_n}/{len(RETRIEVAL_SETS)}",
        "ours_zeroshot": zs,
        "zeroshot_sets": f"{zs_n}/{len(ZEROSHOT_SETS)}",
    }


def _diff(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _rows_for(res: Results, paper_row: dict) -> list[dict]:
    """One CSV row per model that reproduces the Table V row; one without ours if none does."""
    base = {k: paper_row[k] for k in ("ablation", "setting", "backbone", "note")}
    base |= {"paper_retrieval": paper_row["retrieval"], "paper_zeroshot": paper_row["zeroshot"]}
    names = {paper_row["label"], paper_row["same_as"]} - {""}
    models = [m for m, info in res.models.items() if info.get("paper") in names]
    if not models:
        return [{**base, "model": ""}]
    rows = []
    for model in models:
        ours = averages(res, model)
        rows.append(
            {
                **base,
                "model": model,
                **ours,
                "diff_retrieval": _diff(ours["ours_retrieval"], base["paper_retrieval"]),
                "diff_zeroshot": _diff(ours["ours_zeroshot"], base["paper_zeroshot"]),
            }
        )
    return rows


def table_v_table(res: Results) -> tuple[str, list[dict], list[str]]:
    """(markdown, CSV rows, CSV header) of the Table V page."""
    rows = [r for paper_row in table_v() for r in _rows_for(res, paper_row)]
    parts = [
        "# Ablations (paper Table V)\n\n",
        "Retrieval: mean recall in % averaged over RSITMD, RSICD and UCM; zero-shot: top-1 in % "
        "averaged over the 12 classification datasets; ours only where a model has every set "
        "(sets: how many it has). A model fills a row when its `paper:` is `Table V <ablation>: "
        "<setting>`, or the Tables II-IV row the setting is the same run as (config/ablations.yaml).\n",
    ]
    for ablation in dict.fromkeys(r["ablation"] for r in rows):
        mine = [r for r in rows if r["ablation"] == ablation]
        parts.append(f"\n## {ablation}\n\n")
        parts.append(
            md_table(
                ["setting", "backbone", "model", "ret paper", "ret ours", "ret ours - paper", "ret sets"]
                + ["ZS paper", "ZS ours", "ZS ours - paper", "ZS sets"],
                [_md_row(r) for r in mine],
            )
        )
        notes = [f"- {r['setting']}: {r['note']}" for r in mine if r["note"]]
        if notes:
            parts.append("\n" + "\n".join(dict.fromkeys(notes)) + "\n")
    return "".join(parts), rows, HEADER


def _md_row(r: dict) -> list[str]:
    return [
        r["setting"],
        r["backbone"],
        r["model"] or "–",
        num_text(r["paper_retrieval"]),
        num_text(r.get("ours_retrieval")),
        num_text(r.get("diff_retrieval"), signed=True),
        r.get("retrieval_sets", "–"),
        num_text(r["paper_zeroshot"]),
        num_text(r.get("ours_zeroshot")),
        num_text(r.get("diff_zeroshot"), signed=True),
        r.get("zeroshot_sets", "–"),
    ]
