"""The leaderboard: config/leaderboard.yaml plans every zoo model on every benchmark under both
prompt protocols in one DAG, quickly; zoo weights at a URL are fetched by the fetch_weights
code and checked against the zoo's sha256, or recorded on first use and held to it."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from httpserver import FixtureServer
from remoteclip.weight_cache import WeightSource, manifest_path, zoo_sources
from remoteclip.weight_fetch import WeightsError, fetch
from remoteclip.zoo import load_zoo, weights_file
from workflow_helpers import REPO, snakemake

URL_ENTRY = {
    "family": "SkyCLIP",
    "arch": "ViT-B-32",
    "image_size": 224,
    "tokenizer": "open_clip",
    "format": "open_clip_train",
    "licence": "MIT",
    "paper": "a test",
    "repository": "https://example.org",
}


def test_leaderboard_dry_run_lists_every_model_benchmark_and_protocol(tmp_path):
    config = yaml.safe_load((REPO / "config" / "leaderboard.yaml").read_text())
    zoo = load_zoo(REPO / "config" / "models.yaml")
    protocols = config["evaluation"]["leaderboard"]["protocols"]
    assert set(protocols) == {"paper", "ensemble"} and len(protocols["ensemble"]) > 1
    benchmarks = sorted(config["datasets"])
    start = time.monotonic()
    out = snakemake(tmp_path, REPO / "config" / "leaderboard.yaml", "-n", "--quiet", "rules").stdout
    seconds = time.monotonic() - start
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M))
    assert int(jobs["features"]) == len(zoo) * len(protocols) * len(benchmarks), out
    assert int(jobs["fetch_weights"]) == len({s.key for m in zoo.values() for s in zoo_sources(m)}), out
    assert "train" not in jobs and "build_shards" not in jobs, "the leaderboard trains nothing"
    assert seconds < 120, f"the dry run took {seconds:.0f} s"


def test_an_unknown_leaderboard_model_stops_the_workflow_naming_it(tmp_path):
    config = yaml.safe_load((REPO / "config" / "leaderboard.yaml").read_text())
    config["evaluation"]["leaderboard"]["models"] = ["RemoteCLIP-ViT-B32"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, path, "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "evaluation.leaderboard.models.0: 'RemoteCLIP-ViT-B32' is not an entry of the model zoo" in out
    assert "did you mean 'RemoteCLIP-ViT-B-32'" in out and "Traceback" not in out


def url_source(server: FixtureServer, data: bytes, sha256: str | None) -> tuple[WeightSource, dict]:
    url = server.add("/releases/skyclip/epoch_20.pt", data)
    model = {**URL_ENTRY, "weights": {"url": url, "sha256": sha256}}
    (source,) = zoo_sources(model)
    return source, model


def test_url_weights_are_checked_against_the_zoo_sha256(tmp_path):
    data = b"weights of a release" * 100
    with FixtureServer() as server:
        source, model = url_source(server, data, hashlib.sha256(data).hexdigest())
        manifest = fetch(source, tmp_path / "cache", tmp_path / "lock.yaml")
        (record,) = manifest["files"]
        assert record["verified_by"] == "zoo sha256" and Path(record["path"]) == weights_file(tmp_path / "cache", model)
        assert json.loads(manifest_path(tmp_path / "cache", source).read_text())["url"] == source.url

        wrong, _ = url_source(server, data, "0" * 64)
        with pytest.raises(WeightsError, match=r"expected \(stated in the model zoo\); refused, the file is kept at"):
            fetch(wrong, tmp_path / "cache2", tmp_path / "lock2.yaml")
    assert list((tmp_path / "cache2").rglob("*.bad")) and not manifest_path(tmp_path / "cache2", wrong).exists()


def test_url_weights_without_a_sha256_are_trusted_on_first_use_then_held_to_it(tmp_path):
    lock = tmp_path / "lock.yaml"
    with FixtureServer() as server:
        source, _ = url_source(server, b"first", None)
        (record,) = fetch(source, tmp_path / "cache", lock)["files"]
        assert record["verified_by"] == "recorded on first use"
        recorded = yaml.safe_load(lock.read_text())["weights"][source.key]["epoch_20.pt"]["sha256"]
        assert recorded == hashlib.sha256(b"first").hexdigest()

        changed, _ = url_source(server, b"changed upstream", None)
        with pytest.raises(WeightsError, match=f"recorded in {re.escape(str(lock))}"):
            fetch(changed, tmp_path / "other-cache", lock)


def test_the_leaderboard_page_sets_ours_beside_the_published_numbers(tmp_path):
    from remoteclip.report import OUTPUTS, build_report

    summary = tmp_path / "summary.csv"
    rows = [
        ("Geo.paper", "AID", "zeroshot", "acc1", 70.0),
        ("Geo.paper", "EuroSAT", "zeroshot", "acc1", 50.0),
        ("Geo.paper", "RSITMD", "retrieval", "mean_recall", 40.0),
        ("Geo.ensemble", "AID", "zeroshot", "acc1", 75.0),
        ("ours", "AID", "zeroshot", "acc1", 80.0),
        ("ours", "AID", "fewshot", "4.mean", 60.0),
        ("ours", "AID", "fewshot", "16.mean", 66.0),
    ]
    summary.write_text(
        "model,benchmark,task,metric,value,source\n" + "".join(f"{','.join(map(str, r))},this workflow\n" for r in rows)
    )
    published = [{"benchmark": "AID", "task": "zeroshot", "metric": "acc1", "value": 74.42, "source": "README"}]
    leaderboard = {
        "Geo.paper": {"zoo": "Geo", "protocol": "paper", "published": published},
        "Geo.ensemble": {"zoo": "Geo", "protocol": "ensemble", "published": published},
    }
    paths = build_report(tmp_path / "report", summary=summary, leaderboard=leaderboard)
    page = paths["leaderboard_md"].read_text()
    assert "| Geo.paper | 70.00 (74.42, -4.42) | 50.00 | 60.00 |" in page  # AID, EuroSAT, mean of ours
    assert "| Geo.ensemble | 75.00 (74.42, +0.58) | – | – |" in page  # no EuroSAT: no mean
    assert "| ours | 80.00 | – | – |" in page
    assert "### few-shot" in page and "| ours | 66.00 | 66.00 |" in page  # the largest shot count
    with open(paths["leaderboard_csv"], newline="") as fh:
        table = list(csv.DictReader(fh))
    geo = next(r for r in table if r["model"] == "Geo.paper" and r["benchmark"] == "AID")
    assert (geo["protocol"], geo["published"], geo["difference"], geo["source"]) == (
        "paper",
        "74.42",
        "-4.42",
        "README",
    )
    assert paths["leaderboard_png"].stat().st_size > 1000
    assert OUTPUTS["leaderboard_md"] in paths["index"].read_text()


TINY_ARCH = "tiny-board-ViT"
TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
}


@pytest.mark.slow
def test_a_demo_leaderboard_scores_a_run_and_two_zoo_families(tmp_path):
    """On synthetic benchmarks: our run beside two zoo families whose releases are random
    weights in their real layouts (a RemoteCLIP plain state dict, a SkyCLIP open_clip_train
    checkpoint), placed in the weights cache as a user without internet would; the report's
    leaderboard page lists all of them under both protocols."""
    import open_clip
    import torch

    from test_weight_cache import workflow_config

    (tmp_path / "config" / "models").mkdir(parents=True)
    (tmp_path / "config" / "models" / f"{TINY_ARCH}.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(tmp_path / "config" / "models" / f"{TINY_ARCH}.json")
    torch.manual_seed(5)
    state = open_clip.create_model(TINY_ARCH).state_dict()
    base = {**URL_ENTRY, "arch": TINY_ARCH, "image_size": 32}
    zoo = {
        "RemoteCLIP-tiny": {
            **base,
            "family": "RemoteCLIP",
            "format": "state_dict",
            "weights": {"hf": {"repo": "org/RemoteCLIP", "file": "RemoteCLIP-tiny.pt"}},
            "published": [
                {"benchmark": "w_scenes", "task": "zeroshot", "metric": "acc1", "value": 50.0, "source": "t"}
            ],
        },
        "SkyCLIP-tiny": {
            **base,
            "family": "SkyCLIP",
            "format": "open_clip_train",
            # SkyCLIP's real release: a zip at a URL whose member is the checkpoint
            "weights": {
                "url": "https://example.org/SkyScript/ckpt/SkyCLIP_tiny.zip",
                "member": "SkyCLIP_tiny/epoch_20.pt",
            },
        },
    }
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"models": zoo}))
    cache = tmp_path / "data" / "weights"
    (cache / "RemoteCLIP").mkdir(parents=True)
    (cache / "url").mkdir()
    torch.save(state, cache / "RemoteCLIP" / "RemoteCLIP-tiny.pt")
    checkpoint = io.BytesIO()
    torch.save({"epoch": 20, "state_dict": {f"module.{k}": v for k, v in state.items()}}, checkpoint)
    with zipfile.ZipFile(cache / "url" / "SkyCLIP_tiny.zip", "w") as zf:  # placed by hand: no download
        zf.writestr("SkyCLIP_tiny/epoch_20.pt", checkpoint.getvalue())

    config = yaml.safe_load(workflow_config(tmp_path).read_text())
    config["runs"]["r"]["model"] = {"arch": TINY_ARCH, "pretrained": None}
    config["evaluation"]["models"] = {"r": {"run": "r"}}
    config["evaluation"]["leaderboard"] = {
        "protocols": {"paper": ["a satellite photo of {}."], "ensemble": ["{}.", "an aerial view of {}."]}
    }
    config["zoo"] = str(tmp_path / "models.yaml")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake(tmp_path, path, "results/report/index.md")

    summary = (tmp_path / "results/eval/summary.csv").read_text()
    for model in (
        "r",
        "RemoteCLIP-tiny.paper",
        "RemoteCLIP-tiny.ensemble",
        "SkyCLIP-tiny.paper",
        "SkyCLIP-tiny.ensemble",
    ):
        assert (
            f"\n{model},w_scenes,zeroshot,acc1," in summary and f"\n{model},w_rsicd,retrieval,mean_recall," in summary
        )
    # the same weights in two layouts are the same model: equal numbers for the same protocol
    rows = dict(re.findall(r"^([^,]+,w_\w+,\w+,acc1|[^,]+,w_\w+,\w+,mean_recall),([\d.]+)", summary, flags=re.M))
    assert rows["RemoteCLIP-tiny.paper,w_scenes,zeroshot,acc1"] == rows["SkyCLIP-tiny.paper,w_scenes,zeroshot,acc1"]
    result = json.loads((tmp_path / "results/eval/RemoteCLIP-tiny.ensemble/w_scenes.zeroshot.json").read_text())
    assert result["protocol"]["templates"] == ["{}.", "an aerial view of {}."]
    page = (tmp_path / "results/report/leaderboard.md").read_text()
    assert "| RemoteCLIP-tiny.paper |" in page and "| SkyCLIP-tiny.ensemble |" in page and "| r |" in page
    assert "(50.00, " in page  # the published number beside ours
    lock = yaml.safe_load((tmp_path / "weights.lock.yaml").read_text())["weights"]
    assert {k for k in lock if k.startswith(("hf--org_", "url--"))} == {
        "hf--org_RemoteCLIP--RemoteCLIP-tiny.pt",
        "url--https_example.org_SkyScript_ckpt_SkyCLIP_tiny.zip",
    }
    # fetch_weights verified the hand-placed archive and extracted its member
    assert (cache / "url" / "SkyCLIP_tiny.unzipped" / "SkyCLIP_tiny" / "epoch_20.pt").is_file()
