"""The report: the paper's numbers as data, the paper-row mapping, tables, learning check,
plots and DVC files built from a small set of result files, and `snakemake --report`."""

from __future__ import annotations

import csv
import json
import re
import zipfile
from pathlib import Path

import pytest
import yaml

from remoteclip import report
from remoteclip.evaluate.summary import FIELDS, write_summary
from workflow_helpers import REPO, snakemake, write_config

# the paper reference's result tables (§6.1, §6.3-6.5), copied into the repository
PAPER_TABLES = REPO / "tests" / "data" / "paper_tables.md"
CLS12 = [
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


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------- the paper's numbers


def test_paper_results_parse():
    path = REPO / "src/remoteclip/data/paper_results.csv"
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == FIELDS
        rows = list(reader)
    catalogue = set(yaml.safe_load((REPO / "config/datasets.yaml").read_text())["datasets"])
    metrics = {
        "retrieval": {m for m, _ in report.RET_METRICS},
        "zeroshot": {"acc1"},
        "linear_probe": {"acc1"},
        "knn": {"acc1"},
        "fewshot": {f"{s}.mean" for s in (1, 4, 8, 16, 32)},
    }
    keys = set()
    for row in rows:
        assert re.fullmatch(r"(RemoteCLIP|CLIP|CLIP-CL) (RN50|ViT-B-32|ViT-L-14)", row["model"]), row
        assert row["benchmark"] in catalogue, row
        assert row["metric"] in metrics[row["task"]], row
        assert 0 < float(row["value"]) <= 100 and re.fullmatch(r"\d+\.\d\d", row["value"]), row
        assert row["source"].startswith("paper "), row
        key = (row["model"], row["benchmark"], row["task"], row["metric"])
        assert key not in keys, f"duplicate {key}"
        keys.add(key)
    per_task = {t: sum(r["task"] == t for r in rows) for t in metrics}
    # Table II: 5 rows x 3 datasets x 7; Table III: 6 x 12; Table IV: 5 x 12 each; few-shot 3 x 12 + 9
    assert per_task == {"retrieval": 105, "zeroshot": 72, "linear_probe": 60, "knn": 60, "fewshot": 45}
    assert report.paper_results() == [{**r, "value": float(r["value"])} for r in rows]  # the packaged copy


@pytest.mark.parametrize(
    "model, benchmark, task, metric, value",
    [
        ("RemoteCLIP ViT-L-14", "RSITMD", "retrieval", "mean_recall", 50.52),
        ("RemoteCLIP ViT-B-32", "RSICD", "retrieval", "text_to_image_R@10", 54.25),
        ("CLIP-CL RN50", "UCM-Captions", "retrieval", "image_to_text_R@5", 44.76),
        ("CLIP-CL ViT-B-32", "RSITMD", "retrieval", "image_to_text_R@1", 24.78),
        ("RemoteCLIP RN50", "UCM-Captions", "retrieval", "mean_recall", 49.25),
        ("CLIP RN50", "RSI-CB128", "zeroshot", "acc1", 26.56),
        ("RemoteCLIP ViT-B-32", "AID", "zeroshot", "acc1", 91.30),
        ("RemoteCLIP ViT-B-32", "Optimal-31", "zeroshot", "acc1", 77.96),  # issue #18's "AID" numbers
        ("CLIP ViT-L-14", "SIRI-WHU", "zeroshot", "acc1", 58.33),  # WHU-earth
        ("RemoteCLIP ViT-L-14", "RSSCN7", "zeroshot", "acc1", 72.32),  # RS2800
        ("CLIP-CL RN50", "RSSCN7", "linear_probe", "acc1", 82.50),
        ("CLIP-CL RN50", "RSSCN7", "knn", "acc1", 89.29),
        ("RemoteCLIP ViT-B-32", "WHU-RS19", "knn", "acc1", 94.17),
        ("CLIP ViT-B-32", "EuroSAT", "linear_probe", "acc1", 95.15),
        ("RemoteCLIP RN50", "WHU-RS19", "fewshot", "8.mean", 85.44),
        ("RemoteCLIP RN50", "RSSCN7", "fewshot", "16.mean", 73.86),
    ],
)
def test_paper_results_spot_checks(model, benchmark, task, metric, value):
    found = [
        r
        for r in report.paper_results()
        if (r["model"], r["benchmark"], r["task"], r["metric"]) == (model, benchmark, task, metric)
    ]
    assert len(found) == 1 and found[0]["value"] == value


def test_paper_results_leave_out_what_the_paper_does_not_give():
    keys = {(r["model"], r["benchmark"], r["task"], r["metric"]) for r in report.paper_results()}
    assert ("RemoteCLIP RN50", "Optimal-31", "fewshot", "16.mean") not in keys  # "not given here"
    assert not any(k[0] == "RemoteCLIP ViT-L-14" and k[2] in ("linear_probe", "knn") for k in keys)
    assert not any(k[2] == "counting" for k in keys)  # Fig. 8 only


def test_the_papers_numbers_are_stored_once():
    """paper_results.csv holds the RemoteCLIP paper's numbers; the zoo's entries point at their
    rows (`paper_row`) instead of repeating them."""
    raw = yaml.safe_load((REPO / "config/models.yaml").read_text())["models"]
    cited = [
        (name, p["benchmark"], p["task"], p["metric"])
        for name, entry in raw.items()
        for p in entry.get("published") or []
        if "RemoteCLIP paper" in p["source"]
    ]
    assert not cited, f"{len(cited)} numbers of the RemoteCLIP paper copied into config/models.yaml"


def test_the_zoo_shows_the_papers_rows_as_before():
    """The zoo's view of the paper's numbers (derived from paper_results.csv) is what the
    leaderboard showed when config/models.yaml listed them itself (tests/data/zoo_published_before.csv,
    the 276 numbers it held)."""
    from remoteclip.zoo import load_zoo

    with open(REPO / "tests/data/zoo_published_before.csv", newline="") as fh:
        before = {
            (r["entry"], r["benchmark"], r["task"], r["metric"]): (float(r["value"]), r["source"], r["notes"])
            for r in csv.DictReader(fh)
        }
    zoo = load_zoo(REPO / "config/models.yaml")
    now = {
        (n, p["benchmark"], p["task"], p["metric"]): (p["value"], p["source"], p.get("notes", ""))
        for n, e in zoo.items()
        for p in e["published"]
        if p["source"].startswith("RemoteCLIP paper")
    }
    assert len(before) == 276 and now == before


def _reference_tables(text: str) -> dict[tuple, float]:
    """Every cell of §6's tables that paper_results.csv carries, read from the reference."""
    paper_cls = [
        "RSI-CB128",
        "RSI-CB256",
        "WHU-earth",
        "EuroSAT",
        "MLRSNet",
        "PatternNet",
        "RESISC45",
        "AID",
        "RS2800",
        "OPTIMAL-31",
        "RSC11",
        "WHU-RS19",
    ]
    out = {}
    section = text[text.index("### 6.1") :]
    blocks = re.split(r"\n(?=\*\*(?:RSITMD|RSICD|UCM)\*\* \(test\)|### 6\.)", section)
    bench_of = {"RSITMD": "RSITMD", "RSICD": "RSICD", "UCM": "UCM-Captions"}
    for block in blocks:
        rows = [
            [c.strip() for c in line.strip().strip("|").split("|")]
            for line in block.splitlines()
            if line.startswith("|") and not line.startswith("|---")
        ]
        head = block.split("\n", 1)[0]
        if m := re.match(r"\*\*(RSITMD|RSICD|UCM)\*\*", head):
            mi = rows[0].index("method")
            for row in rows[1:]:
                name = {"CLIP-CL (RET-3)": "CLIP-CL", "**RemoteCLIP**": "RemoteCLIP"}.get(row[mi])
                if name:
                    for metric, v in zip([k for k, _ in report.RET_METRICS], row[-7:]):
                        out[(f"{name} {row[mi + 1].split()[0]}", bench_of[m.group(1)], "retrieval", metric)] = float(v)
        elif head.startswith("### 6.3") or head.startswith("### 6.4"):
            assert rows[0][2:14] == paper_cls
            for row in rows[1:]:
                method = row[0].strip("*")
                if method not in ("CLIP", "CLIP-CL", "RemoteCLIP") or row[1] not in ("RN50", "ViT-B-32", "ViT-L-14"):
                    continue
                for bench, cell in zip(CLS12, row[2:14]):
                    if head.startswith("### 6.3"):
                        out[(f"{method} {row[1]}", bench, "zeroshot", "acc1")] = float(cell)
                    else:
                        linear, knn = cell.split("/")
                        out[(f"{method} {row[1]}", bench, "linear_probe", "acc1")] = float(linear)
                        out[(f"{method} {row[1]}", bench, "knn", "acc1")] = float(knn)
        elif head.startswith("### 6.5"):
            for row in rows[1:]:
                for bench, cell in zip(CLS12, row[1:13]):
                    if re.fullmatch(r"\d+\.\d+", cell):
                        out[("RemoteCLIP RN50", bench, "fewshot", f"{row[0]}.mean")] = float(cell)
    return out


def test_paper_results_match_the_reference_cell_by_cell():
    reference = _reference_tables(PAPER_TABLES.read_text())
    ours = {(r["model"], r["benchmark"], r["task"], r["metric"]): r["value"] for r in report.paper_results()}
    assert ours == reference


# ---------------------------------------------------------------- which model is which paper row


def test_paper_rows_of_the_paper_config():
    from remoteclip.config import load
    from remoteclip.evaluate.registry import resolve

    config = load(REPO / "config/paper.yaml", REPO / "workflow/schemas/config.schema.yaml")
    entries = config["evaluation"]["models"]
    described = report.describe_models(entries, {n: resolve(n, e, config) for n, e in entries.items()})
    paper = {n: d["paper"] for n, d in described.items()}
    assert paper == {
        "remoteclip_rn50": "RemoteCLIP RN50",
        "remoteclip_vitb32": "RemoteCLIP ViT-B-32",
        "remoteclip_vitl14": "RemoteCLIP ViT-L-14",
        "clip_cp_rn50": "CLIP-CL RN50",
        "clip_cp_vitb32": "CLIP-CL ViT-B-32",
        "openai_rn50": "CLIP RN50",
        "openai_vitb32": "CLIP ViT-B-32",
        "openai_vitl14": "CLIP ViT-L-14",
        "released_rn50": "RemoteCLIP RN50",
        "released_vitb32": "RemoteCLIP ViT-B-32",
        "released_vitl14": "RemoteCLIP ViT-L-14",
    }
    assert set(paper.values()) <= set(report.paper_models())
    # OpenAI's weights are where the runs start: the learning check's "before"
    run_start = report.start_key(resolve("x", {"run": "remoteclip_rn50", "init": True}, config))
    assert described["openai_rn50"]["start"] == run_start
    assert described["openai_vitb32"]["start"] != run_start


def test_zoo_models_map_to_paper_rows_under_the_papers_prompt_only():
    """The leaderboard scores every zoo entry under two prompt protocols: only the one with the
    paper's prompt is the paper's row (RemoteCLIP's releases and the OpenAI weights it scored);
    the prompt ensemble and the other families have none."""
    from remoteclip.config import load
    from remoteclip.evaluate.registry import leaderboard_models, resolve

    config = load(REPO / "config/leaderboard.yaml", REPO / "workflow/schemas/config.schema.yaml")
    config["zoo"] = str(REPO / "config/models.yaml")
    entries = leaderboard_models(config)
    described = report.describe_models(entries, {n: resolve(n, e, config) for n, e in entries.items()})
    rows = {n: d["paper"] for n, d in described.items() if d["paper"]}
    assert rows == {
        "OpenAI-CLIP-RN50.paper": "CLIP RN50",
        "OpenAI-CLIP-ViT-B-32.paper": "CLIP ViT-B-32",
        "OpenAI-CLIP-ViT-L-14.paper": "CLIP ViT-L-14",
        "RemoteCLIP-RN50.paper": "RemoteCLIP RN50",
        "RemoteCLIP-ViT-B-32.paper": "RemoteCLIP ViT-B-32",
        "RemoteCLIP-ViT-L-14.paper": "RemoteCLIP ViT-L-14",
    }


def test_paper_name_defaults():
    assert report.paper_name({"released": "RemoteCLIP-ViT-B-32"}, {"arch": "ViT-B-32"}) == "RemoteCLIP ViT-B-32"
    assert (
        report.paper_name({"arch": "RN50", "pretrained": "openai"}, {"arch": "RN50", "pretrained": "openai"})
        == "CLIP RN50"
    )
    assert report.paper_name({"run": "r"}, {"arch": "RN50", "pretrained": None, "checkpoint": "m.pt"}) is None
    assert (
        report.paper_name(
            {"arch": "RN50", "pretrained": "openai", "paper": "CLIP-CL RN50"}, {"arch": "RN50", "pretrained": "openai"}
        )
        == "CLIP-CL RN50"
    )
    assert (
        report.paper_name(
            {"arch": "RN50", "checkpoint": "x.pt"}, {"arch": "RN50", "pretrained": "openai", "checkpoint": "x.pt"}
        )
        is None
    )


def test_schema_accepts_paper_key():
    from remoteclip.config import ConfigError, validate

    schema = REPO / "workflow/schemas/config.schema.yaml"
    base = {
        "datasets": {},
        "evaluation": {"models": {"m": {"arch": "RN50", "pretrained": "openai", "paper": "CLIP RN50"}}},
    }
    assert validate(base, schema)["evaluation"]["models"]["m"]["paper"] == "CLIP RN50"
    with pytest.raises(ConfigError, match="paper"):
        validate({"datasets": {}, "evaluation": {"models": {"m": {"arch": "RN50", "paper": 3}}}}, schema)


# ---------------------------------------------------------------- a report from written result files

ARCH = "ViT-B-32"
OPENAI = {"arch": ARCH, "pretrained": "openai", "checkpoint": None, "quick_gelu": True, "seed": 0}
SPECS = {
    "ours_all": {**OPENAI, "pretrained": None, "checkpoint": "results/models/all.pt", "origin": "run all"},
    "ours_ret": {**OPENAI, "pretrained": None, "checkpoint": "results/models/ret.pt", "origin": "run ret"},
    "ours_init": {**OPENAI, "origin": "initialisation of run all"},
    "released_b32": {
        **OPENAI,
        "pretrained": None,
        "checkpoint": "checkpoints/RemoteCLIP-ViT-B-32.pt",
        "origin": "released RemoteCLIP-ViT-B-32",
    },
}
ENTRIES = {
    "ours_all": {"run": "all", "paper": "RemoteCLIP ViT-B-32"},
    "ours_ret": {"run": "ret"},
    "ours_init": {"run": "all", "init": True},
    "released_b32": {"released": "RemoteCLIP-ViT-B-32"},
}
# (zero-shot AID, toy zero-shot, retrieval mean, counting words top-1)
LEVEL = {"ours_all": 80.0, "ours_ret": 70.0, "ours_init": 40.0, "released_b32": 90.0}


def _result(model, dataset, task, metrics, protocol=None):
    return {
        "dataset": dataset,
        "model": model,
        "task": task,
        "metrics": metrics,
        "protocol": protocol or {},
        "model_spec": {"name": model, **SPECS[model]},
        "versions": {},
    }


def _confusion(level):
    hit = level / 100
    return [[hit if i == j else (1 - hit) / 9 for j in range(10)] for i in range(10)]


def write_results(root: Path) -> list[Path]:
    paths = []
    for model, level in LEVEL.items():
        docs = [
            _result(
                model,
                "RSICD",
                "retrieval",
                {**{m: level - 5 + i for i, (m, _) in enumerate(report.RET_METRICS[:6])}, "mean_recall": level - 2.5},
            ),
            _result(
                model,
                "AID",
                "zeroshot",
                {"acc1": level, "acc5": 99.0, "mean_per_class_recall": level},
                {"classnames": ["a", "b", "c", "d"]},
            ),
            _result(
                model,
                "toy",
                "zeroshot",
                {"acc1": level / 2, "acc5": 90.0, "mean_per_class_recall": level / 2},
                {"classnames": ["a", "b", "c", "d", "e"]},
            ),
            _result(model, "AID", "linear_probe", {"acc1": level + 5, "acc5": 100.0, "mean_per_class_recall": level}),
            _result(model, "AID", "knn", {"acc1": level + 2, "acc5": 100.0, "mean_per_class_recall": level}),
            _result(
                model,
                "AID",
                "fewshot",
                {str(s): {"mean": level - 16 / s, "std": 1.5, "acc1": [], "n_train": []} for s in (1, 4, 8)},
            ),
            _result(
                model,
                "count",
                "counting",
                {
                    v: {
                        **{f"top{k}": min(100.0, level / 4 + 10 * (k - 1)) for k in range(1, 11)},
                        "confusion": _confusion(level / 4),
                        "support": [5] * 10,
                    }
                    for v in ("words", "digits")
                },
            ),
        ]
        for doc in docs:
            path = root / "eval" / model / f"{doc['dataset']}.{doc['task']}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(doc))
            paths.append(path)
    return paths


def write_inputs(root: Path) -> dict:
    results = write_results(root)
    write_summary(results, root / "eval" / "summary.csv")
    runs = {}
    start = report.start_key(OPENAI)
    for run, groups in (("all", ["DET", "RET", "SEG"]), ("ret", ["RET"])):
        log = root / "train" / run / "log.csv"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["step", "epoch", "loss", "lr", "logit_scale", "samples_per_s", "data_s", "step_s"])
            for step in range(10, 110, 10):
                writer.writerow([step, step / 50, 4.0 - step / 50, 1e-3 * min(1, step / 30), 14.0, 100.0, 0.01, 0.3])
        sources = ["ret_set", "det_set"] if run == "all" else ["ret_set"]
        runs[run] = {"log": str(log), "groups": groups, "start": start, "sources": sources}
    captions = []
    for source, text in (
        ("ret_set", "a harbor with many boats moored near the pier ."),
        ("det_set", "There are 3 ships in the picture ."),
    ):
        path = root / "captions" / f"{source}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "".join(
                json.dumps({"image": f"{source}/{i}.png", "captions": [text] * 5, "source": source, "split": "train"})
                + "\n"
                for i in range(4)
            )
        )
        captions.append(path)
    (root / "captions" / "summary.json").write_text(
        json.dumps(
            {
                "datasets": {
                    "ret_set": {"group": "RET", "images": 4, "captioned": 4, "captions": 20, "skipped_total": 0},
                    "det_set": {"group": "DET", "images": 5, "captioned": 4, "captions": 20, "skipped_total": 1},
                }
            }
        )
    )
    dedup = root / "dedup" / "all" / "summary.json"
    dedup.parent.mkdir(parents=True)
    dedup.write_text(
        json.dumps(
            {
                "images": 8,
                "removed": 2,
                "kept": 6,
                "per_source": {
                    "det_set": {"images": 4, "removed": 1, "kept": 3},
                    "ret_set": {"images": 4, "removed": 1, "kept": 3},
                },
                "pairs": [
                    {"source": "det_set", "collides_with": "ret_set", "reason": "training duplicate", "removed": 1},
                    {"source": "ret_set", "collides_with": "RSICD", "reason": "test leak: RSICD", "removed": 1},
                ],
                "audit": {
                    "det_set": {
                        "images": 4,
                        "kept": 3,
                        "removed": 1,
                        "duplicates_of": {"ret_set": 1},
                        "test_leaks": {"RSICD": {"images": 0, "test_images": 0}},
                    },
                    "ret_set": {
                        "images": 4,
                        "kept": 3,
                        "removed": 1,
                        "duplicates_of": {},
                        "test_leaks": {"RSICD": {"images": 2, "test_images": 1}},
                    },
                },
            }
        )
    )
    return {
        "summary": root / "eval" / "summary.csv",
        "results": results,
        "models": report.describe_models(ENTRIES, SPECS),
        "runs": runs,
        "benchmarks": {
            "RSICD": {"paper": "RSICD"},
            "AID": {"paper": "AID"},
            "toy": {"paper": "toy"},
            "count": {"paper": "count"},
        },
        "captions": captions,
        "captions_summary": root / "captions" / "summary.json",
        "dedup": {"all": dedup},
        "licences": {
            "ret_set": {"licence": "CC-BY-NC-4.0", "terms": {"commercial": False, "derivatives": "unknown"}},
            "det_set": {"licence": "synthetic", "terms": {"commercial": True, "derivatives": True}},
        },
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    out = root / "report"
    paths = report.build_report(out, **write_inputs(root))
    return out, paths


def test_every_output_is_written(built):
    out, paths = built
    assert set(paths) == set(report.OUTPUTS)
    for name, rel in report.OUTPUTS.items():
        assert (out / rel).is_file() and (out / rel).stat().st_size > 0, name


def test_plots_are_pngs(built):
    from PIL import Image

    out, _ = built
    for name, rel in report.OUTPUTS.items():
        if rel.endswith(".png"):
            with Image.open(out / rel) as image:
                assert image.format == "PNG" and min(image.size) > 50, name


def test_retrieval_table_with_the_published_row(built):
    out, _ = built
    rows = read_csv(out / "tables/retrieval.csv")
    assert list(rows[0]) == ["benchmark", "model", "row", "from", "paper_model"] + [m for m, _ in report.RET_METRICS]
    # the initialisation maps to CLIP ViT-B-32, which has no Table II row: no published row for it
    assert [(r["model"], r["row"]) for r in rows] == [
        ("ours_init", "ours"),
        ("ours_all", "ours"),
        ("RemoteCLIP ViT-B-32", "paper"),
        ("ours_all", "ours - paper"),
        ("ours_ret", "ours"),
        ("released_b32", "ours"),
        ("RemoteCLIP ViT-B-32", "paper"),
        ("released_b32", "ours - paper"),
    ]
    assert rows[0]["paper_model"] == "CLIP ViT-B-32"
    ours, paper, diff = rows[1:4]
    assert float(ours["mean_recall"]) == 77.5 and paper["from"] == "paper Table II"
    assert float(paper["mean_recall"]) == 35.26 and float(paper["text_to_image_R@10"]) == 54.25
    assert float(diff["mean_recall"]) == pytest.approx(77.5 - 35.26)
    md = (out / "tables/retrieval.md").read_text()
    assert "| I→T R@1 |" in md and "## RSICD" in md and "paper Table II" in md


def test_zeroshot_table_layout(built):
    out, _ = built
    rows = read_csv(out / "tables/zeroshot.csv")
    assert list(rows[0]) == ["model", "row", "from", "paper_model", "AID", "toy", "average"]  # paper datasets first
    ours = next(r for r in rows if r["model"] == "ours_all" and r["row"] == "ours")
    assert float(ours["AID"]) == 80.0 and float(ours["average"]) == 60.0
    paper = next(r for r in rows if r["model"] == "RemoteCLIP ViT-B-32" and r["row"] == "paper")
    assert float(paper["AID"]) == 91.30 and paper["toy"] == "" and paper["average"] == ""
    diff = next(r for r in rows if r["model"] == "ours_all" and r["row"] == "ours - paper")
    assert float(diff["AID"]) == pytest.approx(80.0 - 91.30)
    clip = next(r for r in rows if r["model"] == "CLIP ViT-B-32" and r["row"] == "paper")
    assert float(clip["AID"]) == 65.65 and clip["from"] == "paper Table III"
    chance = next(r for r in rows if r["row"] == "chance")
    assert float(chance["AID"]) == 25.0 and float(chance["toy"]) == 20.0
    assert not any(r["row"] == "paper" for r in rows if r["paper_model"] == "")  # ours_ret maps to nothing


def test_linear_probe_knn_fewshot_counting_tables(built):
    out, _ = built
    linear = read_csv(out / "tables/linear_probe.csv")
    paper = next(r for r in linear if r["model"] == "RemoteCLIP ViT-B-32" and r["row"] == "paper")
    assert float(paper["AID"]) == 95.95 and paper["from"] == "paper Table IV"
    knn = read_csv(out / "tables/knn.csv")
    assert float(next(r for r in knn if r["model"] == "ours_ret")["AID"]) == 72.0
    assert float(next(r for r in knn if r["model"] == "CLIP ViT-B-32")["AID"]) == 90.35

    fewshot = read_csv(out / "tables/fewshot.csv")
    assert list(fewshot[0]) == [
        "benchmark",
        "model",
        "row",
        "from",
        "paper_model",
        "1",
        "1_std",
        "4",
        "4_std",
        "8",
        "8_std",
    ]
    ours = next(r for r in fewshot if r["model"] == "ours_all")
    assert float(ours["4"]) == 76.0 and float(ours["4_std"]) == 1.5
    assert not any(r["row"] == "paper" for r in fewshot)  # only RemoteCLIP RN50 has published few-shot numbers
    assert "76.00 ± 1.50" in (out / "tables/fewshot.md").read_text()
    points = read_csv(out / "fewshot.csv")
    assert list(points[0]) == ["model", "benchmark", "shots", "top1"] and len(points) == 4 * 3

    counting = read_csv(out / "tables/counting.csv")
    assert list(counting[0]) == ["benchmark", "variant", "model", "row", "from"] + [f"top{k}" for k in range(1, 11)]
    assert {(r["variant"], r["model"]) for r in counting} == {
        (v, m) for v in ("words", "digits") for m in [*LEVEL, "chance"]
    }
    assert float(next(r for r in counting if r["model"] == "ours_all")["top1"]) == 20.0
    md = (out / "tables/counting.md").read_text()
    assert "## count, words" in md and "## count, digits" in md


def test_learning_check(built):
    out, _ = built
    check = json.loads((out / "learning_check.json").read_text())
    pairs = {p["model"]: p for p in check["pairs"]}
    assert set(pairs) == {"ours_all", "ours_ret"}
    assert pairs["ours_all"]["baseline"] == "ours_init"
    assert pairs["ours_all"]["relation"] == "initialisation of the same run"
    # ours_ret has no init entry of its own; ours_init has the same initial weights (OpenAI ViT-B-32)
    assert pairs["ours_ret"]["baseline"] == "ours_init" and "same initial weights" in pairs["ours_ret"]["relation"]
    rows = {(r["benchmark"], r["metric"]): r for r in pairs["ours_all"]["rows"]}
    assert set(rows) == {
        ("AID", "acc1"),
        ("toy", "acc1"),
        ("RSICD", "mean_recall"),
        ("count", "words.top1"),
        ("count", "digits.top1"),
    }
    assert rows[("AID", "acc1")]["difference"] == 40.0 and rows[("AID", "acc1")]["chance"] == 25.0
    assert rows[("RSICD", "mean_recall")]["difference"] == 40.0 and rows[("RSICD", "mean_recall")]["chance"] is None
    assert rows[("count", "words.top1")]["difference"] == 10.0 and rows[("count", "words.top1")]["chance"] == 10.0
    assert pairs["ours_all"]["improved"] == 5 == pairs["ours_all"]["compared"]

    [sources] = check["sources"]
    assert (sources["with_det_seg"], sources["ret_only"]) == ("ours_all", "ours_ret")
    assert sources["average_difference"] == {"zeroshot": pytest.approx(7.5), "retrieval": pytest.approx(10.0)}
    assert "helped on every measured average" in sources["statement"]
    assert check["paper_table_v"]["difference"]["retrieval"] == pytest.approx(5.69)

    table = read_csv(out / "learning_check.csv")
    assert {r["comparison"] for r in table} == {"trained - initial", "with DET/SEG - RET only"}
    md = (out / "learning_check.md").read_text()
    assert "ours_all vs ours_init" in md and "+40.00" in md
    assert "## Learning check" in (out / "index.md").read_text()


def test_dvc_files(built):
    out, _ = built
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["ours_all"]["zeroshot_top1/AID"] == 80.0
    assert metrics["ours_all"]["zeroshot_top1/average"] == 60.0
    assert metrics["ours_all"]["retrieval_mean_recall/RSICD"] == 77.5
    assert metrics["ours_all"]["counting_words_top1/count"] == 20.0
    assert all(isinstance(v, float) for m in metrics.values() for v in m.values())  # flat per model
    log = read_csv(out / "training_log.csv")
    assert list(log[0]) == ["run", "step", "loss", "lr"] and len(log) == 20
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    named = {p if isinstance(p, str) else next(iter(p)) for p in dvc["metrics"] + dvc["plots"]}
    assert named == {f"results/report/{report.OUTPUTS[k]}" for k in ("metrics", "training_log", "fewshot_points")}


def test_index_shows_the_dedup_audit_per_source_and_benchmark(built):
    out, _ = built
    index = (out / "index.md").read_text()
    assert "| source | images | kept | duplicates of other sources | in RSICD test |" in index
    assert "| det_set | 4 | 3 | 1 of ret_set | 0 |" in index
    assert "| ret_set | 4 | 3 | 0 | 2 (1 test images) |" in index


def test_index_links_every_table_and_plot(built):
    out, _ = built
    index = (out / "index.md").read_text()
    for name, rel in report.OUTPUTS.items():
        if name != "index":
            assert f"]({rel})" in index, rel
    assert "| ours_all | run all | RemoteCLIP ViT-B-32 |" in index


def test_the_data_table_lists_each_source_with_its_licence_and_flags_runs_with_restricted_ones(built):
    out, _ = built
    index = (out / "index.md").read_text()
    assert "| licence | commercial | derivatives |" in index
    assert "| ret_set | RET | 4 | 4 | 20 | 0 | CC-BY-NC-4.0 | false | unknown |" in index
    assert "| det_set | DET | 5 | 4 | 20 | 1 | synthetic | true | true |" in index
    note = "non-commercial sources: ret_set (commercial: false, derivatives: unknown)"
    assert f"- **all**: {note}" in index and f"- **ret**: {note}" in index


def test_report_without_any_results(tmp_path):
    paths = report.build_report(
        tmp_path / "report", runs={"r": {"log": str(tmp_path / "missing.csv"), "groups": ["RET"], "start": None}}
    )
    for name, path in paths.items():
        assert path.is_file() and path.stat().st_size > 0, name
    assert "No evaluation results" in (tmp_path / "report/tables/retrieval.md").read_text()
    assert "No run model has its initialisation evaluated" in (tmp_path / "report/learning_check.md").read_text()
    assert json.loads((tmp_path / "report/metrics.json").read_text()) == {}
    assert read_csv(tmp_path / "report/training_log.csv") == []


def test_report_with_classification_only(tmp_path):
    inputs = write_inputs(tmp_path)
    only_aid = [p for p in inputs["results"] if p.name.startswith("AID.")]
    write_summary(only_aid, tmp_path / "only.csv")
    report.build_report(
        tmp_path / "report", summary=tmp_path / "only.csv", results=only_aid, models=inputs["models"], runs={}
    )
    assert "No retrieval benchmark was evaluated." in (tmp_path / "report/tables/retrieval.md").read_text()
    assert "No counting benchmark was evaluated." in (tmp_path / "report/tables/counting.md").read_text()
    assert read_csv(tmp_path / "report/tables/zeroshot.csv")


# ---------------------------------------------------------------- Snakemake's report


def test_every_reported_output_has_a_caption():
    text = (REPO / "workflow/rules/report.smk").read_text()
    declared = re.findall(r"^\s+(\w+)=reported\(\"(\w+)\"", text, flags=re.M)
    plain = re.findall(r"^\s+(\w+)=report_file\(\"(\w+)\"\)", text, flags=re.M)
    assert {a for a, b in declared + plain} == set(report.OUTPUTS)  # every file of the report is an output
    assert all(a == b for a, b in declared + plain)
    for name, _ in declared:
        assert (REPO / "workflow/report" / f"{name}.rst").is_file(), name
    reported = {n for n, _ in declared}
    assert {n for n in report.OUTPUTS if n.endswith(("_csv", "_png"))} <= reported  # every table and plot
    assert (REPO / "workflow/report/workflow.rst").is_file()
    assert 'report: "workflow/report/workflow.rst"' in (REPO / "Snakefile").read_text()


@pytest.mark.slow  # two Snakemake starts and four jobs: ~25 s
def test_snakemake_report_zip(tmp_path):
    """A tiny finished run (one retrieval caption source, no runs) and its report archive."""
    config = {
        "seed": 1,
        "datasets": {
            "t_rsicd": {
                "group": "RET",
                "format": "karpathy",
                "synthetic": {"writer": "karpathy", "images": 10, "splits": {"train": 0.6, "val": 0.2, "test": 0.2}},
            }
        },
        "b2c": {"templates": str(REPO / "config" / "b2c_templates.yaml")},
    }
    path = write_config(tmp_path, config)
    snakemake(tmp_path, path)
    assert "No evaluation results" in (tmp_path / "results/report/tables/zeroshot.md").read_text()
    assert (tmp_path / "results/logs/report.log").is_file()
    snakemake(tmp_path, path, "--report", str(tmp_path / "report.zip"))
    with zipfile.ZipFile(tmp_path / "report.zip") as zf:
        names = {Path(n).name for n in zf.namelist()}
        html = zf.read(next(n for n in zf.namelist() if n.endswith("report.html"))).decode()
    assert {"zeroshot.csv", "retrieval.csv", "training.png", "caption_lengths.png", "dedup.png"} <= names
    assert "Caption length in words" in html  # a caption made it in
