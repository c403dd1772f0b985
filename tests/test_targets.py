"""A target the workflow cannot build says so: unknown runs, datasets and models give
Snakemake's "no rule to produce" instead of a traceback from an input function."""

import pytest

from workflow_helpers import snakemake, tiny_config, write_config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("targets")
    config = tiny_config(root)
    config["datasets"] = {"t_rsicd": config["datasets"]["t_rsicd"]}
    config["runs"] = {"tiny": {"sources": ["t_rsicd"]}}
    config["evaluation"] = {"models": {"tiny": {"run": "tiny"}}}
    return root, write_config(root, config)


@pytest.mark.parametrize(
    "target",
    [
        "results/models/nope.pt",  # an unknown run
        "results/shards/tiny/manifest.json",  # a file inside the shards folder of a known run
        "results/dedup/nope/removed.tsv",
        "results/captions/nope.jsonl",  # an unknown dataset
        "results/dedup/hashes/nope.train.tsv",
        "results/eval/nope/t_rsicd.retrieval.json",  # an unknown model
    ],
)
def test_unknown_targets_read_no_rule_to_produce(workdir, target):
    root, config = workdir
    proc = snakemake(root, config, "-n", target, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"No rule to produce {target}" in out, out[-2000:]
    assert "Traceback" not in out and "KeyError" not in out, out[-2000:]


def test_known_targets_still_resolve(workdir):
    root, config = workdir
    out = snakemake(root, config, "-n", "results/models/tiny.pt").stdout
    assert "train" in out and "plan_shards" in out and "shard_manifest" in out
