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
from remoteclip.weights.cache import WeightSource, manifest_path, weights_file, zoo_sources
from remoteclip.weights.fetch import WeightsError, fetch
from remoteclip.zoo import load_zoo
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


def dry_run_outputs(out: str) -> list[tuple[str, list[str]]]:
    """(rule, output files) of every job a `snakemake -n` lists."""
    jobs = []
    for line in out.splitlines():
        if m := re.fullmatch(r"(?:local)?rule (\w+):", line):
            jobs.append((m.group(1), []))
        elif m := re.fullmatch(r"    output: (.*)", line):
            jobs[-1][1].extend(f.strip() for f in m.group(1).split(","))
    return jobs


def feature_files(jobs: list[tuple[str, list[str]]], suffix: str) -> list[str]:
    """Every results/features/<folder>/<benchmark><suffix> some job writes, once per job."""
    return sorted(f for _, outs in jobs for f in outs if re.fullmatch(rf"results/features/[^/]+/[^/.]+{suffix}", f))


@pytest.fixture(scope="module")
def leaderboard_dry_run(tmp_path_factory) -> tuple[list[tuple[str, list[str]]], float]:
    start = time.monotonic()
    out = snakemake(tmp_path_factory.mktemp("board"), REPO / "config" / "leaderboard.yaml", "-n").stdout
    return dry_run_outputs(out), time.monotonic() - start


def test_leaderboard_dry_run_lists_every_model_benchmark_and_protocol(leaderboard_dry_run):
    config = yaml.safe_load((REPO / "config" / "leaderboard.yaml").read_text())
    zoo = load_zoo(REPO / "config" / "models.yaml")
    protocols = config["evaluation"]["leaderboard"]["protocols"]
    assert set(protocols) == {"paper", "ensemble"} and len(protocols["ensemble"]) > 1
    jobs, seconds = leaderboard_dry_run
    rules = [rule for rule, _ in jobs]
    texts = feature_files(jobs, r"\.text\.npz")
    assert texts == sorted(
        f"results/features/{m}.{p}/{b}.text.npz" for m in zoo for p in protocols for b in config["datasets"]
    )
    assert rules.count("fetch_weights") == len({s.key for m in zoo.values() for s in zoo_sources(m)})
    assert not set(rules) & {"train", "plan_shards", "build_shards", "shard_manifest"}, "the leaderboard trains nothing"
    assert seconds < 120, f"the dry run took {seconds:.0f} s"


def test_the_leaderboard_dry_run_encodes_each_image_set_once(leaderboard_dry_run):
    """The prompt protocols differ only in their texts: one job encodes a zoo model's images of a
    benchmark, cached under the zoo entry's name, and every protocol of that model reads them."""
    config = yaml.safe_load((REPO / "config" / "leaderboard.yaml").read_text())
    zoo = load_zoo(REPO / "config" / "models.yaml")
    jobs, _ = leaderboard_dry_run
    images = feature_files(jobs, r"\.npz")
    assert images == sorted(f"results/features/{m}/{b}.npz" for m in zoo for b in config["datasets"])


def test_the_demo_dry_run_encodes_each_models_images_and_texts_once(tmp_path):
    jobs = dry_run_outputs(snakemake(tmp_path, REPO / "config" / "config.yaml", "-n").stdout)
    images, texts = feature_files(jobs, r"\.npz"), feature_files(jobs, r"\.text\.npz")
    assert images and len(set(images)) == len(images)
    assert texts == sorted(f.removesuffix(".npz") + ".text.npz" for f in images)  # both in results/features/<model>/


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
    # the authors scored AID with one prompt on our split: the `paper` protocol's conditions
    single = {"split": "sorted-80-20", "prompts": ["a satellite photo of {}."]}
    published = [
        {
            "benchmark": "AID",
            "task": "zeroshot",
            "metric": "acc1",
            "value": 74.42,
            "source": "README",
            "protocol": "geo-readme",
            "conditions": single,
        }
    ]
    ensemble = {**single, "prompts": ["a satellite photo of {}.", "an aerial photo of {}."]}
    leaderboard = {
        "Geo.paper": {"zoo": "Geo", "protocol": "paper", "published": published, "measured": {"zeroshot": single}},
        "Geo.ensemble": {
            "zoo": "Geo",
            "protocol": "ensemble",
            "published": published,
            "measured": {"zeroshot": ensemble},
        },
    }
    paths = build_report(tmp_path / "report", summary=summary, leaderboard=leaderboard)
    page = paths["leaderboard_md"].read_text()
    assert "| Geo.paper | 70.00 (74.42, -4.42) | 50.00 | 60.00 |" in page  # AID, EuroSAT, mean of ours
    # two prompts against the authors' one: their number, named by its protocol, and no difference
    assert "| Geo.ensemble | 75.00 (74.42, geo-readme protocol) | – | – |" in page  # no EuroSAT: no mean
    assert "| ours | 80.00 | – | – |" in page
    assert "### few-shot" in page and "| ours | 66.00 | 66.00 |" in page  # the largest shot count
    with open(paths["leaderboard_csv"], newline="") as fh:
        table = list(csv.DictReader(fh))
    geo = {r["model"]: r for r in table if r["zoo"] == "Geo" and r["benchmark"] == "AID" and r["task"] == "zeroshot"}
    got = [(r["protocol"], r["published"], r["published_protocol"], r["difference"]) for r in geo.values()]
    assert got == [("ensemble", "74.42", "geo-readme", ""), ("paper", "74.42", "geo-readme", "-4.42")]
    assert geo["Geo.paper"]["source"] == "README"
    assert paths["leaderboard_png"].stat().st_size > 1000
    assert OUTPUTS["leaderboard_md"] in paths["index"].read_text()


def write_summary(path: Path, rows: list[tuple]) -> Path:
    path.write_text(
        "model,benchmark,task,metric,value,source\n" + "".join(f"{','.join(map(str, r))},this workflow\n" for r in rows)
    )
    return path


def test_the_shipped_zoo_is_compared_like_with_like(tmp_path):
    """Through the real zoo and config/leaderboard.yaml: RemoteCLIP's paper scored AID zero-shot with
    one prompt on the 8:2 split and k-NN with k=20, T=0.07, so ours under the `paper` prompt and
    both k-NN rows get a difference; the 18-prompt ensemble, our validated linear probe (theirs
    searched on test) and GeoRSCLIP's own prompts and test archive get the number and its protocol."""
    from remoteclip.config import load
    from remoteclip.evaluate.protocols import zoo_published
    from remoteclip.evaluate.registry import leaderboard_models, resolve
    from remoteclip.report import build_report

    config = load(REPO / "config" / "leaderboard.yaml", REPO / "workflow" / "schemas" / "config.schema.yaml")
    config["zoo"] = str(REPO / "config" / "models.yaml")
    config["evaluation"]["leaderboard"]["models"] = ["RemoteCLIP-ViT-B-32", "GeoRSCLIP-ViT-B-32"]
    specs = {n: resolve(n, e, config) for n, e in leaderboard_models(config).items()}
    tasks = ("zeroshot", "knn", "linear_probe")
    summary = write_summary(tmp_path / "summary.csv", [(m, "AID", t, "acc1", 80.0) for m in specs for t in tasks])
    paths = build_report(tmp_path / "report", summary=summary, leaderboard=zoo_published(config, specs))
    with open(paths["leaderboard_csv"], newline="") as fh:
        rows = {(r["model"], r["task"]): r for r in csv.DictReader(fh) if r["benchmark"] == "AID"}
    assert {key for key, r in rows.items() if r["difference"]} == {
        ("RemoteCLIP-ViT-B-32.paper", "zeroshot"),
        ("RemoteCLIP-ViT-B-32.paper", "knn"),
        ("RemoteCLIP-ViT-B-32.ensemble", "knn"),
    }
    ensemble = rows[("RemoteCLIP-ViT-B-32.ensemble", "zeroshot")]
    assert ensemble["published_protocol"] == "remoteclip-paper"
    assert {rows[(f"GeoRSCLIP-ViT-B-32.{p}", "zeroshot")]["published_protocol"] for p in ("paper", "ensemble")} == {
        "rs5m"
    }
    cell = f"| RemoteCLIP-ViT-B-32.ensemble | 80.00 ({float(ensemble['published']):.2f}, remoteclip-paper protocol) |"
    assert cell in paths["leaderboard_md"].read_text()


AID_ZEROSHOT = {"benchmark": "AID", "task": "zeroshot", "metric": "acc1", "value": 70.0, "source": "t"}
README = {"about": "their README", "zeroshot": {"split": "unknown", "prompts": "unknown"}}


@pytest.mark.parametrize(
    "extra, protocols, error",
    [
        ({"published": [{**AID_ZEROSHOT, "protocol": "readme"}]}, {}, r"m\.published\.0\.protocol: 'readme' is not a"),
        (
            {"published": [{**AID_ZEROSHOT, "task": "knn", "protocol": "readme"}]},
            {"readme": README},
            "nothing about knn",
        ),
        ({"paper_row": {"row": "RemoteCLIP ViT-B-16", "protocol": "readme"}}, {"readme": README}, "not a row of"),
        ({"published": [AID_ZEROSHOT]}, {}, "'protocol' is a required property"),  # every number says its protocol
    ],
)
def test_a_published_number_without_a_known_protocol_is_refused(tmp_path, extra, protocols, error):
    from remoteclip.zoo import ZooError

    path = tmp_path / "models.yaml"
    entry = {**URL_ENTRY, "weights": {"url": "https://example.org/m.pt"}, **extra}
    path.write_text(yaml.safe_dump({"protocols": protocols, "models": {"m": entry}}))
    with pytest.raises(ZooError, match=error):
        load_zoo(path)


def test_two_models_that_would_share_image_features_must_be_one_model():
    """A zoo entry's prompt protocols share its image features; an evaluation model that is not
    that entry but carries its name would overwrite them: refused, naming both."""
    from remoteclip.config import ConfigError
    from remoteclip.evaluate.registry import image_sets

    zoo = {"name": "X.paper", "zoo": "X", "arch": "RN50", "templates": ["a {}."], "protocol": "paper"}
    specs = {"X.paper": zoo, "X.ensemble": {**zoo, "name": "X.ensemble", "templates": ["{}.", "a {}."]}}
    assert image_sets(specs) == {"X.paper": "X", "X.ensemble": "X"}
    with pytest.raises(ConfigError, match="'X.paper' and 'X' both cache image features as 'X'"):
        image_sets({**specs, "X": {"name": "X", "arch": "RN50", "pretrained": "openai"}})


def test_the_few_shot_headline_uses_a_shot_count_the_authors_published(tmp_path):
    """RemoteCLIP RN50's few-shot numbers stop at 16 shots (Fig. 9, via issue #3); ours go to 32:
    the few-shot column is the largest shot count both have, so theirs stand beside ours."""
    from remoteclip.report import build_report, paper_results

    conditions = {"split": "sorted-80-20", "probe": "paper"}
    keys = ("benchmark", "task", "metric", "value", "source")
    published = [
        {**{k: r[k] for k in keys}, "protocol": "remoteclip-paper", "conditions": conditions}
        for r in paper_results()
        if (r["model"], r["benchmark"], r["task"]) == ("RemoteCLIP RN50", "AID", "fewshot")
    ]
    assert {p["metric"] for p in published} == {"1.mean", "4.mean", "8.mean", "16.mean"}
    leaderboard = {
        "R.paper": {"zoo": "R", "protocol": "paper", "published": published, "measured": {"fewshot": conditions}}
    }
    rows = [("R.paper", "AID", "fewshot", f"{k}.mean", 50.0 + k) for k in (1, 4, 8, 16, 32)]
    paths = build_report(
        tmp_path / "report", summary=write_summary(tmp_path / "summary.csv", rows), leaderboard=leaderboard
    )
    page = paths["leaderboard_md"].read_text()
    theirs = next(p["value"] for p in published if p["metric"] == "16.mean")
    assert "### few-shot top-1 (%), 16 shots, mean over seeds" in page
    assert f"| R.paper | 66.00 ({theirs:.2f}, " in page


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

    from test_weights_cache import workflow_config

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
                {
                    "benchmark": "w_scenes",
                    "task": "zeroshot",
                    "metric": "acc1",
                    "value": 50.0,
                    "source": "t",
                    "protocol": "t",
                }
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
    protocols = {
        "t": {"about": "a test", "zeroshot": {"split": "sorted-80-20", "prompts": ["a satellite photo of {}."]}}
    }
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"protocols": protocols, "models": zoo}))
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
    # each family's images encoded once, under its zoo name, for both protocols; the texts per protocol
    features = {
        p.relative_to(tmp_path / "results/features").as_posix()
        for p in (tmp_path / "results/features").rglob("w_scenes*.npz")
    }
    assert features == {
        "r/w_scenes.npz",
        "r/w_scenes.text.npz",
        *(f"{m}/w_scenes.npz" for m in ("RemoteCLIP-tiny", "SkyCLIP-tiny")),
        *(f"{m}.{p}/w_scenes.text.npz" for m in ("RemoteCLIP-tiny", "SkyCLIP-tiny") for p in ("paper", "ensemble")),
    }
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
