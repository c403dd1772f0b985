"""The caption stages run end to end through Snakemake on a tiny config."""

import json

import pytest

from workflow_helpers import snakemake, tiny_config, write_config


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf")
    config = tiny_config(workdir)
    path = write_config(workdir, config)
    snakemake(workdir, path)
    return workdir, config, path


def test_caption_files_and_summary(finished_run):
    workdir, config, _ = finished_run
    summary = json.loads((workdir / "results/captions/summary.json").read_text())
    assert set(summary["datasets"]) == set(config["datasets"])
    for name in config["datasets"]:
        rows = [json.loads(line) for line in (workdir / f"results/captions/{name}.jsonl").read_text().splitlines()]
        assert rows and all(len(r["captions"]) == 5 and r["source"] == name for r in rows)
        assert all((workdir / r["image"]).exists() for r in rows)
        entry = summary["datasets"][name]
        assert entry["captioned"] == len(rows)
        assert entry["captioned"] + entry["skipped_total"] >= entry["images"] - entry["skipped_total"]
    assert summary["datasets"]["t_rsicd"]["images"] == 12  # train split only
    potsdam = [json.loads(line) for line in (workdir / "results/captions/t_potsdam.jsonl").read_text().splitlines()]
    assert all(len(r["crop"]) == 4 for r in potsdam)


def test_every_rule_wrote_a_log(finished_run):
    workdir, config, _ = finished_run
    logs = {p.relative_to(workdir / "results/logs").as_posix() for p in (workdir / "results/logs").rglob("*.log")}
    for name in config["datasets"]:
        assert f"synthesize/{name}.log" in logs
    assert {"parse/t_dota.log", "b2c/t_dota.log", "captions/t_rsicd.log", "captions_summary.log"} <= logs


def test_annotations_load_with_pycocotools(finished_run):
    from pycocotools.coco import COCO

    workdir, _, _ = finished_run
    coco = COCO(str(workdir / "results/annotations/t_dota.json"))
    assert len(coco.getImgIds()) == 12 and coco.getCatIds()


def test_nothing_left_to_do_after_a_run(finished_run):
    workdir, _, path = finished_run
    proc = snakemake(workdir, path, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
