"""Compute jobs never touch the network: the weights a configuration needs are fetched by the
local rule `fetch_weights` into the cache (here from a Hugging Face Hub played by a server on
127.0.0.1, under a pretrained tag of a registered tiny architecture), verified, and the train
and features jobs then run from the cache alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hubserver import HubServer
from remoteclip.weights.cache import WeightSource, manifest_path, model_source, needed, released_path, released_source
from workflow_helpers import REPO, snakemake, write_config

ARCH, TAG, REPO_ID = "tiny-cache-ViT", "testtag", "test-org/tiny-cache-clip"
TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
}


def model_configs(folder: Path) -> Path:
    """The tiny architecture and its pretrained tag, as a user registers them in config/models/."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{ARCH}.json").write_text(json.dumps(TINY))
    (folder / "pretrained_tags.yaml").write_text(
        yaml.safe_dump({ARCH: {TAG: {"hf_hub": f"{REPO_ID}/", "quick_gelu": False}}})
    )
    return folder


def tiny_weights(configs: Path, seed: int) -> tuple[bytes, dict]:
    """A seeded random state dict of the tiny architecture, as the Hub would serve it."""
    import open_clip
    import torch
    from safetensors.torch import save

    open_clip.add_model_config(configs / f"{ARCH}.json")
    torch.manual_seed(seed)
    state = open_clip.create_model(ARCH).state_dict()
    return save({k: v.contiguous() for k, v in state.items()}), state


@pytest.fixture(scope="module")
def arch_dir(tmp_path_factory) -> Path:
    return model_configs(tmp_path_factory.mktemp("arch"))


@pytest.fixture(scope="module")
def served_model(arch_dir):
    return tiny_weights(arch_dir, seed=3)


def test_what_the_paper_config_fetches():
    from remoteclip.config import load
    from remoteclip.evaluate.registry import resolve

    config = load(REPO / "config" / "paper.yaml", REPO / "workflow/schemas/config.schema.yaml")
    models = {n: resolve(n, e, config) for n, e in config["evaluation"]["models"].items()}
    keys = set(needed(config, models))
    assert keys == {
        "open_clip--RN50--openai",
        "open_clip--ViT-B-32--openai",
        "open_clip--ViT-L-14--openai",
        "hf--chendelong_RemoteCLIP--RemoteCLIP-RN50.pt",
        "hf--chendelong_RemoteCLIP--RemoteCLIP-ViT-B-32.pt",
        "hf--chendelong_RemoteCLIP--RemoteCLIP-ViT-L-14.pt",
    }
    released = models["released_vitb32"]["checkpoint"]
    assert Path(released) == released_path(config["data"]["weights"], "RemoteCLIP-ViT-B-32")
    assert Path(released).is_relative_to("data/weights")  # the cache is in the data folder by default


def test_sources_of_a_model():
    assert model_source("ViT-B-32", None) is None and model_source("ViT-B-32", "runs/x.pt") is None
    assert model_source("ViT-B-32", "openai") == WeightSource("open_clip_tag", arch="ViT-B-32", tag="openai")
    assert model_source("hf-hub:org/repo", None) == WeightSource("hf_hub_model", repo="org/repo")
    assert released_source("RemoteCLIP-RN50").filename == "RemoteCLIP-RN50.pt"


FETCH = """
import json, sys
from remoteclip.weights.cache import WeightSource
from remoteclip.weights.fetch import fetch
print(json.dumps(fetch(WeightSource(**json.loads(sys.argv[1])), sys.argv[2], sys.argv[3])))
"""


def fetch_in_process(source: WeightSource, cache: Path, lock: Path, hub: HubServer, configs: Path):
    """fetch() as the rule runs it: its own process, online, the Hub at HF_ENDPOINT."""
    import dataclasses
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env |= {"HF_ENDPOINT": hub.base, "PYTHONPATH": str(REPO / "src"), "REMOTECLIP_MODEL_CONFIGS": str(configs)}
    return subprocess.run(
        [sys.executable, "-c", FETCH, json.dumps(dataclasses.asdict(source)), str(cache), str(lock)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_fetch_verifies_against_the_hub_and_refuses_a_changed_file(tmp_path, served_model, arch_dir):
    data, _ = served_model
    source = WeightSource("open_clip_tag", arch=ARCH, tag=TAG)
    cache, lock = tmp_path / "weights", tmp_path / "weights.lock.yaml"
    with HubServer() as hub:
        hub.add(REPO_ID, "open_clip_model.safetensors", data)
        proc = fetch_in_process(source, cache, lock, hub, arch_dir)
        assert proc.returncode == 0, proc.stderr[-3000:]
        manifest = json.loads(manifest_path(cache, source).read_text())
        (record,) = manifest["files"]
        assert record["verified_by"] == "published sha256" and record["size"] == len(data)
        assert Path(record["path"]).read_bytes() == data and str(cache) in record["path"]
        assert (
            yaml.safe_load(lock.read_text())["weights"][source.key]["open_clip_model.safetensors"]["sha256"]
            == record["sha256"]
        )

    # the same tag from a hub that now serves other bytes (an unannounced change, or tampering)
    other = HubServer(commit="f" * 40)
    with other:
        other.add(REPO_ID, "open_clip_model.safetensors", tiny_weights(arch_dir, seed=4)[0])
        proc = fetch_in_process(source, tmp_path / "weights2", lock, other, arch_dir)
    assert proc.returncode != 0
    assert "refused, the file is kept at" in proc.stderr and str(lock) in proc.stderr
    assert not manifest_path(tmp_path / "weights2", source).exists()
    assert list((tmp_path / "weights2").rglob("*.bad"))


def test_fetch_names_an_unknown_tag(tmp_path, arch_dir):
    with HubServer() as hub:
        proc = fetch_in_process(
            WeightSource("open_clip_tag", arch=ARCH, tag="nope"), tmp_path, tmp_path / "l.yaml", hub, arch_dir
        )
    assert proc.returncode != 0 and f"no pretrained tag 'nope' for {ARCH} (known: {TAG})" in proc.stderr


def workflow_config(workdir: Path) -> Path:
    return write_config(
        workdir,
        {
            "seed": 1,
            "datasets": {
                "w_rsicd": {
                    "group": "RET",
                    "format": "karpathy",
                    "synthetic": {
                        "writer": "karpathy",
                        "images": 24,
                        "size": 48,
                        "splits": {"train": 0.5, "test": 0.5},
                    },
                },
                "w_scenes": {
                    "group": "CLS",
                    "format": "class_folders",
                    "synthetic": {
                        "writer": "class_folders",
                        "images": 30,
                        "size": 48,
                        "scenes": ["airport", "forest", "beach"],
                    },
                },
            },
            "runs": {
                "r": {
                    "sources": ["w_rsicd"],
                    "model": {"arch": ARCH, "pretrained": TAG},
                    # a vanishing lr: the export stays the served weights, which shows where training began
                    "train": {
                        "batch_size": 8,
                        "steps": 2,
                        "warmup": 1,
                        "lr": 1e-12,
                        "workers": 0,
                        "checkpoint_every": 2,
                        "log_every": 1,
                    },
                }
            },
            "shards": {"max_side": 48},
            "evaluation": {
                "models": {"r": {"run": "r"}, "r_init": {"run": "r", "init": True}},
                "tasks": ["zeroshot", "retrieval"],
                "workers": 0,
            },
            "download": {"weights_lock": str(workdir / "weights.lock.yaml")},
            "b2c": {"templates": str(REPO / "config" / "b2c_templates.yaml")},
        },
    )


@pytest.mark.slow
def test_fetch_rule_downloads_once_then_jobs_run_offline(tmp_path, served_model):
    data, state = served_model
    model_configs(tmp_path / "config" / "models")  # the workdir's config/models/, as a user would
    config = workflow_config(tmp_path)
    manifest = f"data/weights/.fetched/open_clip--{ARCH}--{TAG}.json"
    online = {"HF_HUB_OFFLINE": None, "TRANSFORMERS_OFFLINE": None}
    with HubServer() as hub:
        hub.add(REPO_ID, "open_clip_model.safetensors", data)
        env = {**online, "HF_ENDPOINT": hub.base}
        dry = snakemake(tmp_path, config, "-n", env=env).stdout
        assert "fetch_weights" in dry and hub.log == []  # a dry run fetches nothing
        snakemake(tmp_path, config, manifest, env=env)
        snakemake(tmp_path, config, manifest, env=env)  # up to date: nothing fetched again
        assert len(hub.downloads("open_clip_model.safetensors")) == 1
    # the hub is gone; a second one listens where the jobs would go if they tried the network
    with HubServer() as canary:
        snakemake(tmp_path, config, "results/eval/summary.csv", env={**online, "HF_ENDPOINT": canary.base})
        assert canary.log == [], f"a compute job went to the network: {canary.log}"
    import torch

    rows = (tmp_path / "results/eval/summary.csv").read_text().splitlines()
    assert any(row.startswith("r_init,w_scenes,zeroshot,acc1") for row in rows)
    assert any(row.startswith("r,w_rsicd,retrieval,mean_recall") for row in rows)
    exported = torch.load(tmp_path / "results/models/r.pt", weights_only=True)
    assert exported.keys() == state.keys()
    assert all(torch.allclose(exported[k], state[k], atol=1e-6) for k in state), "training did not start from the tag"
