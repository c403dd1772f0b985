"""Table V (the paper's ablations): its numbers as data, checked against an independent
transcription, and the report's Table V page on a small synthetic set of results, whose
averages and differences are computed here independently of the report code."""

from __future__ import annotations

import csv
import json
import random
import re
import statistics
from pathlib import Path

import pytest

from remoteclip import report
from remoteclip.evaluate.summary import write_summary
from workflow_helpers import REPO

PAPER_TABLES = REPO / "tests" / "data" / "paper_tables.md"
RET3 = {"ret_a": "RSITMD", "ret_b": "RSICD", "ret_c": "UCM-Captions"}  # our benchmark -> the paper's name
CLS12 = report.PAPER_ORDER[3:]  # the twelve classification sets, after the three retrieval ones


def _reference_table_v() -> list[tuple[str, float, float]]:
    """(ablation heading, retrieval, zero-shot) of every row of the reference's §6.7, in order."""
    text = PAPER_TABLES.read_text()
    section = text[text.index("### 6.7") :]
    out = []
    for block in re.split(r"\n(?=\*\*)", section)[1:]:
        heading = block.split("**")[1]
        for line in block.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if line.startswith("|") and not line.startswith("|---") and re.fullmatch(r"[\d.]+", cells[-1]):
                out.append((heading, float(cells[-2]), float(cells[-1])))
    return out


def test_table_v_matches_the_reference_row_by_row():
    ours = report.table_v()
    reference = _reference_table_v()
    assert [(r["retrieval"], r["zeroshot"]) for r in ours] == [(ret, zs) for _, ret, zs in reference]
    headings = {"dataset": "Dataset", "initialisation": "Pretraining", "backbone": "Backbone"}
    headings |= {"preprocessing": "Preprocessing", "loss": "Loss"}
    assert [headings[r["ablation"]] for r in ours] == [h.split()[0] for h, _, _ in reference]


def test_table_v_labels_are_unique_and_same_as_names_a_paper_row():
    rows = report.table_v()
    labels = [r["label"] for r in rows]
    assert len(set(labels)) == len(labels)
    assert set(labels) <= set(report.paper_models())
    tables_ii_iv = {r["model"] for r in report.paper_results()}
    assert {r["same_as"] for r in rows if r["same_as"]} <= tables_ii_iv
    assert report.table_v_label("loss", "SigLIP") == "Table V loss: SigLIP" in labels


def test_the_learning_checks_dataset_ablation_comes_from_table_v():
    rows = {r["setting"]: r for r in report.table_v() if r["ablation"] == "dataset"}
    assert report.TABLE_V_SOURCES["RET only"]["retrieval"] == rows["RET-3"]["retrieval"] == 36.32
    assert report.TABLE_V_SOURCES["RET + DET + SEG"]["zeroshot"] == rows["SEG-4 + DET-10 + RET-3"]["zeroshot"]


# ---------------------------------------------------------------- the page


MODELS = {
    # fills "Table V loss: SigLIP" alone
    "siglip": {"paper": "Table V loss: SigLIP", "complete": True},
    # fills every row that is the same configuration as "RemoteCLIP RN50"
    "full": {"paper": "RemoteCLIP RN50", "complete": True},
    # misses one zero-shot set: its zero-shot average and difference stay empty
    "partial": {"paper": "Table V loss: N-pair", "complete": False},
}


def _doc(model, dataset, task, metrics):
    return {"dataset": dataset, "model": model, "task": task, "metrics": metrics, "protocol": {}, "model_spec": {}}


def _write(root: Path) -> tuple[dict, dict]:
    """Result files for MODELS; returns the inputs of build_report and {(model, task): values}."""
    rng = random.Random(7)
    values, paths = {}, []
    for model, info in MODELS.items():
        ret = {b: round(rng.uniform(5, 60), 4) for b in RET3}
        cls = {b: round(rng.uniform(10, 90), 4) for b in CLS12[: 12 if info["complete"] else 11]}
        values[(model, "retrieval")], values[(model, "zeroshot")] = list(ret.values()), list(cls.values())
        docs = [_doc(model, b, "retrieval", {"mean_recall": v, "image_to_text_R@1": 1.0}) for b, v in ret.items()]
        docs += [_doc(model, b, "zeroshot", {"acc1": v, "acc5": 99.0}) for b, v in cls.items()]
        for doc in docs:
            path = root / "eval" / model / f"{doc['dataset']}.{doc['task']}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(doc))
            paths.append(path)
    write_summary(paths, root / "summary.csv")
    models = {
        m: {"kind": "run", "origin": f"run {m}", "arch": "RN50", "run": m, "paper": i["paper"], "start": None}
        for m, i in MODELS.items()
    }
    benchmarks = {b: {"paper": p} for b, p in RET3.items()} | {b: {"paper": b} for b in CLS12}
    return {"summary": root / "summary.csv", "results": paths, "models": models, "benchmarks": benchmarks}, values


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("table_v")
    inputs, values = _write(root)
    paths = report.build_report(root / "report", **inputs)
    with open(paths["table_v_csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows, paths["table_v_md"].read_text(), (root / "report" / "index.md").read_text(), values


def _paper(ablation, setting):
    return next(r for r in report.table_v() if (r["ablation"], r["setting"]) == (ablation, setting))


def _close(text: str, want: float) -> bool:
    return abs(float(text) - want) < 1e-4  # the CSV keeps 6 significant digits


def test_a_row_named_by_its_label_gets_our_averages_and_the_differences(page):
    rows, _, _, values = page
    (row,) = [r for r in rows if r["setting"] == "SigLIP"]
    assert row["model"] == "siglip"
    ret, zs = statistics.mean(values[("siglip", "retrieval")]), statistics.mean(values[("siglip", "zeroshot")])
    paper = _paper("loss", "SigLIP")
    assert _close(row["ours_retrieval"], ret) and _close(row["ours_zeroshot"], zs)
    assert _close(row["diff_retrieval"], ret - paper["retrieval"])
    assert _close(row["diff_zeroshot"], zs - paper["zeroshot"])
    assert float(row["paper_retrieval"]) == 26.68 and float(row["paper_zeroshot"]) == 45.66
    assert (row["retrieval_sets"], row["zeroshot_sets"]) == ("3/3", "12/12")


def test_rows_of_the_same_configuration_share_one_model(page):
    rows, _, _, values = page
    filled = {(r["ablation"], r["setting"]) for r in rows if r["model"] == "full"}
    assert filled == {
        ("dataset", "SEG-4 + DET-10 + RET-3"),
        ("initialisation", "RN50 CLIP"),
        ("backbone", "RN50 pretrained image + text"),
    }
    zs = statistics.mean(values[("full", "zeroshot")])
    by = {(r["ablation"], r["setting"]): r for r in rows if r["model"] == "full"}
    # one number of ours against the paper's two printings of the same configuration (55.06, 53.46)
    assert _close(by[("initialisation", "RN50 CLIP")]["diff_zeroshot"], zs - 55.06)
    assert _close(by[("backbone", "RN50 pretrained image + text")]["diff_zeroshot"], zs - 53.46)


def test_a_missing_set_leaves_the_average_out(page):
    rows, _, _, values = page
    (row,) = [r for r in rows if r["setting"] == "N-pair"]
    assert _close(row["ours_retrieval"], statistics.mean(values[("partial", "retrieval")]))
    assert row["ours_zeroshot"] == "" and row["diff_zeroshot"] == "" and row["zeroshot_sets"] == "11/12"


def test_every_paper_row_is_on_the_page(page):
    rows, md, index, _ = page
    assert {(r["ablation"], r["setting"]) for r in rows} == {(r["ablation"], r["setting"]) for r in report.table_v()}
    unfilled = [r for r in rows if r["setting"] == "SEG-4"]
    assert unfilled[0]["model"] == "" and unfilled[0]["ours_retrieval"] == ""
    for heading in ("## dataset", "## initialisation", "## backbone", "## preprocessing", "## loss"):
        assert heading in md
    assert "| SigLIP | RN50 | siglip | 26.68 |" in md
    assert "](tables/table_v.md)" in index and f"5 of {len(report.table_v())} rows with our numbers" in index
