"""The web corpora end to end: fixtures of RS5M, RSTeller (WebDataset tars read in place),
SkyScript (a caption table beside image folders), Git-10M (Parquet with embedded images) and
GAIA (a URL list fetched by img2dataset from a server on 127.0.0.1), mixed with a paper source
(an RSICD-layout RET set, also the retrieval benchmark) in one run: captions, de-duplication
with its per-corpus audit, shards, a few training steps and the retrieval score.

Every corpus holds, besides its own scenes, a copy of one RSICD training image (a duplicate of
the paper source) and of one RSICD test image (a test leak), and RSTeller one of RS5M's own
scenes (a duplicate between two corpora), re-rendered by the synthetic world's `copies`; so the
audit's counts are known by construction. The four corpora rendered here carry the synthetic
world's licence; GAIA, fetched through its catalogue entry, its own (terms unknown: flagged).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from remoteclip.synthetic import SynthSpec, spec_from_config, synthesize

sys.path.insert(0, str(Path(__file__).parent))
from httpserver import FixtureServer  # noqa: E402
from peers import IMG2DATASET, install  # noqa: E402
from train_helpers import tiny_model_dir  # noqa: E402
from workflow_helpers import REPO, snakemake, write_config  # noqa: E402

RUN = "web_mix"
SEED = 1
SIZE = 64
# RSICD-layout: images 0-11 train, 12-23 test (the retrieval benchmark)
RSICD = {"writer": "karpathy", "images": 24, "size": SIZE, "splits": {"train": 0.5, "test": 0.5}}
DUPLICATE, LEAK = 2, 20  # the RSICD train image and test image every corpus copies
COPIES = [{"dataset": "t_rsicd", "indices": [DUPLICATE, LEAK]}]
OWN = 6  # each corpus's own scenes
CORPORA = {  # catalogue entry -> synthetic writer
    "RS5M": "rs5m",
    "RSTeller": "rsteller",
    "SkyScript": "skyscript",
    "Git-10M": "git10m",
}


def catalogue_entry(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / "datasets.yaml").read_text())["datasets"][name]


CROSS = {"RSTeller": [{"dataset": "RS5M", "indices": [3]}]}  # RSTeller re-shares an RS5M scene


def corpus(name: str, writer: str) -> dict:
    """The catalogue's group, format and options, the images rendered instead of downloaded."""
    entry = catalogue_entry(name)
    copies = COPIES + CROSS.get(name, [])
    return {
        "group": entry["group"],
        "format": entry["format"],
        "options": entry.get("options", {}),
        "synthetic": {"writer": writer, "images": OWN, "size": SIZE, "copies": copies},
    }


def serve_gaia(server: FixtureServer, folder: Path) -> dict:
    """GAIA's URL list and images on the server; its catalogue entry fetching from there."""
    rsicd = spec_from_config("t_rsicd", RSICD, {"size": SIZE, "clutter": 0.3}, SEED)
    spec = SynthSpec("GAIA", "gaia", OWN, size=SIZE, seed=SEED, options={"url_base": server.url("img")})
    synthesize(spec, folder, progress=False, copies=[(rsicd, [DUPLICATE, LEAK])])
    for image in sorted((folder / "serve").iterdir()):
        server.add(f"img/{image.name}", image.read_bytes())
    listing = server.add("gaia/train_data.json", (folder / "train_data.json").read_bytes())
    entry = catalogue_entry("GAIA")
    entry["files"] = [{"name": "train_data.json", "urls": [listing]}]
    # the release's fetch options, at the fixture's size and with one process
    entry["img2dataset"]["options"] |= {"image_size": SIZE, "processes_count": 1, "thread_count": 2}
    return entry


def config_for(root: Path, catalogue: Path, img2dataset: Path) -> dict:
    return {
        "seed": SEED,
        "catalogue": str(catalogue),
        "download": {"lock": str(root / "lock.yaml"), "img2dataset_packages": str(img2dataset)},
        "datasets": {
            "t_rsicd": {
                "group": "RET",
                "format": "karpathy",
                "options": {"annotations": "dataset_rsicd.json", "images": "RSICD_images", "splits": ["train"]},
                "synthetic": RSICD,
            },
            **{name: corpus(name, writer) for name, writer in CORPORA.items()},
            "GAIA": {"catalogue": "GAIA", "images": None},
        },
        "shards": {"max_side": SIZE, "samples_per_shard": 16},
        "runs": {
            RUN: {
                "sources": ["t_rsicd", *CORPORA, "GAIA"],
                # the paper source drawn twice as often, the largest corpus half as often
                "weights": {"t_rsicd": 2.0, "RS5M": 0.5},
                "model": {"arch": "tiny-test-ViT", "pretrained": None},
                "train": {"batch_size": 8, "steps": 4, "lr": 5e-4, "warmup": 1, "workers": 0, "log_every": 1},
                "resources": {"threads": 2},
            }
        },
        "evaluation": {"models": {RUN: {"run": RUN}}, "benchmarks": ["t_rsicd"], "tasks": ["retrieval"]},
    }


@pytest.fixture(scope="module")
def img2dataset() -> Path:
    folder, why = install("img2dataset", IMG2DATASET)
    if folder is None:
        pytest.skip(why)
    return folder


@pytest.fixture(scope="module")
def corpora_run(tmp_path_factory, img2dataset):
    root = tmp_path_factory.mktemp("corpora-run")
    tiny_model_dir(root / "config")
    with FixtureServer() as server:
        catalogue = root / "datasets.yaml"
        catalogue.write_text(yaml.safe_dump({"datasets": {"GAIA": serve_gaia(server, root / "gaia-site")}}))
        config = write_config(root, config_for(root, catalogue, img2dataset))
        targets = [f"results/models/{RUN}.pt", f"results/eval/{RUN}/t_rsicd.retrieval.json"]
        snakemake(root, config, *targets, timeout=1200)
    shutil.rmtree(root / "gaia-site")
    return root


def test_every_corpus_is_captioned_in_its_own_release_shape(corpora_run):
    for name in [*CORPORA, "GAIA"]:
        rows = [json.loads(line) for line in (corpora_run / f"results/captions/{name}.jsonl").open()]
        copied = sum(len(c["indices"]) for c in COPIES + CROSS.get(name, []))
        assert len(rows) == OWN + copied, name
        assert all(r["captions"] and r["source"] == name for r in rows), name
    rs5m = [json.loads(line) for line in (corpora_run / "results/captions/RS5M.jsonl").open()]
    assert all("stored" in r for r in rs5m)  # read in place, never unpacked


def test_the_audit_counts_each_corpus_duplicate_and_test_leak(corpora_run):
    audit = json.loads((corpora_run / f"results/dedup/{RUN}/summary.json").read_text())["audit"]
    corpora = [*CORPORA, "GAIA"]
    # RSICD (listed first) keeps its training image; each corpus's copy is its duplicate
    for name in corpora:
        expected = {"t_rsicd": 1, "RS5M": 1} if name == "RSTeller" else {"t_rsicd": 1}
        assert audit[name]["duplicates_of"] == expected, name
    assert audit["t_rsicd"]["duplicates_of"] == {} and audit["t_rsicd"]["removed"] == 0
    for name in corpora:
        assert audit[name]["test_leaks"]["t_rsicd"] == {"images": 1, "test_images": 1}, name
    assert audit["t_rsicd"]["test_leaks"]["t_rsicd"]["images"] == 0  # its train split is clean


def test_the_run_trains_on_the_mix_and_is_scored(corpora_run):
    manifest = json.loads((corpora_run / f"results/shards/{RUN}/manifest.json").read_text())
    assert set(manifest["sources"]) == {"t_rsicd", *CORPORA, "GAIA"}
    # 42 = 12 RSICD training images + 6 own scenes in each of the five corpora
    assert manifest["total"] == 42 and manifest["removed_by_dedup"] == 11
    assert manifest["sources"]["GAIA"]["terms"] == {"commercial": "unknown", "derivatives": "unknown"}
    assert manifest["licence_note"] == "non-commercial sources: GAIA (commercial: unknown, derivatives: unknown)"
    result = json.loads((corpora_run / f"results/eval/{RUN}/t_rsicd.retrieval.json").read_text())
    assert 0 <= result["metrics"]["image_to_text_R@1"] <= 100
    exported = json.loads((corpora_run / f"results/models/{RUN}.sources.json").read_text())
    assert exported["licence_note"] == manifest["licence_note"]
    assert len((corpora_run / f"results/train/{RUN}/log.csv").read_text().splitlines()) == 1 + 4  # 4 steps
    train_log = (corpora_run / f"results/logs/train/{RUN}.log").read_text()
    assert "source t_rsicd: 12 samples, weight 2, 24 draws per epoch" in train_log
    assert "source RS5M: 6 samples, weight 0.5, 3 draws per epoch" in train_log
