"""Agreement with CLIP_benchmark, through the real package (installed beside the venv by
tests/peers.py and run in its own process by clip_benchmark_peer.py): its zero-shot classifier
and its retrieval evaluation (recall_at_k with torch.topk, which the official RemoteCLIP
retrieval.py calls) against ours, on the same model and images, in fp32 (CLIP_benchmark's CPU
autocast runs in bf16 and flips borderline predictions, so amp is off)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from peers import CLIP_BENCHMARK, install, python_path
from remoteclip.evaluate.features import embed
from remoteclip.evaluate.retrieval import retrieval_metrics
from remoteclip.evaluate.tasks import retrieval, zeroshot

from .conftest import TINY_ARCH
from .test_retrieval import planted_duplicates

TEMPLATES = ["a satellite photo of {}.", "an aerial image of {}."]
SETTINGS = {"retrieval": {"tie_order": "topk"}}
PEER = Path(__file__).with_name("clip_benchmark_peer.py")


@pytest.fixture(scope="module")
def clip_benchmark(tiny_model_dir, tiny_clip_state, tmp_path_factory):
    """Run CLIP_benchmark's evaluation of a task on a split; returns its metrics."""
    folder, why = install("clip_benchmark", CLIP_BENCHMARK)
    if folder is None:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("clip_benchmark")

    def run(task: str, split: dict | None = None, features: Path | None = None) -> dict:
        if features is not None:
            args = [str(features)]
        else:
            split_path = work / f"{task}.json"
            split_path.write_text(json.dumps(split))
            args = [str(split_path), str(tiny_model_dir), str(tiny_clip_state), TINY_ARCH, *TEMPLATES]
        proc = subprocess.run(
            [sys.executable, str(PEER), task, *args],
            capture_output=True,
            text=True,
            env=python_path(folder),
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run


def test_zeroshot_equals_clip_benchmark(clip_benchmark, tiny_clip, cls_split):
    model, preprocess, tokenizer = tiny_clip
    images, texts = embed(model, preprocess, tokenizer, cls_split, TEMPLATES, ["words"], "cpu", workers=0)
    ours, _ = zeroshot(cls_split, images, texts, SETTINGS)
    theirs = clip_benchmark("zeroshot", cls_split)
    assert 0 < ours["acc1"] < 100
    assert ours["acc1"] == pytest.approx(100 * theirs["acc1"], abs=1e-9)
    assert ours["acc5"] == pytest.approx(100 * theirs["acc5"], abs=1e-9)
    assert ours["mean_per_class_recall"] == pytest.approx(100 * theirs["mean_per_class_recall"], abs=1e-9)


def test_retrieval_recalls_equal_clip_benchmark(clip_benchmark, tiny_clip, ret_split):
    model, preprocess, tokenizer = tiny_clip
    images, texts = embed(model, preprocess, tokenizer, ret_split, TEMPLATES, ["words"], "cpu", workers=0)
    ours, _ = retrieval(ret_split, images, texts, SETTINGS)
    theirs = clip_benchmark("retrieval", ret_split)
    for k in (1, 5, 10):
        assert ours[f"image_to_text_R@{k}"] == pytest.approx(100 * theirs[f"text_retrieval_recall@{k}"], abs=1e-4)
        assert ours[f"text_to_image_R@{k}"] == pytest.approx(100 * theirs[f"image_retrieval_recall@{k}"], abs=1e-4)
    dependent = sum(t["tie_dependent"] for key, t in ours["ties"].items() if key != "mean_recall")
    assert dependent > 0, "the fixture's repeated captions should make some hits depend on the tie order"


@pytest.mark.parametrize("seed", range(2))
def test_topk_order_equals_the_official_ranking_where_the_stable_order_does_not(clip_benchmark, tmp_path, seed):
    import numpy as np

    images, texts, owner = planted_duplicates(seed)
    np.savez(tmp_path / "features.npz", images=images, texts=texts, owner=owner)
    theirs = clip_benchmark("ranking", features=tmp_path / "features.npz")
    ours = retrieval_metrics(images, texts, owner)
    stable = retrieval_metrics(images, texts, owner, tie_order="stable")
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-4), key
    assert any(abs(stable[key] - value) > 1 for key, value in theirs.items()), "no disagreement planted"
