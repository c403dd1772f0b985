"""Scoring a checkpoint does not need the trainer: evaluation and the scripts of its rules
import nothing from remoteclip.train (models and devices are shared, in remoteclip.models and
remoteclip.devices)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

from conftest import REPO

SCORING_SCRIPTS = ["features.py", "evaluate.py", "eval_split.py", "eval_summary.py", "fetch_weights.py"]


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | {
        n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    }


def test_evaluation_modules_load_without_the_trainer():
    code = (
        "import importlib, pkgutil, sys, remoteclip.evaluate as e\n"
        "for m in pkgutil.iter_modules(e.__path__): importlib.import_module(f'remoteclip.evaluate.{m.name}')\n"
        "import remoteclip.devices, remoteclip.weights.fetch\n"
        "print(sorted(k for k in sys.modules if k.startswith('remoteclip.train')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]"


def test_the_scoring_scripts_import_nothing_from_the_trainer():
    for name in SCORING_SCRIPTS:
        trainer = [m for m in imported_modules(REPO / "scripts" / name) if m.startswith("remoteclip.train")]
        assert not trainer, f"scripts/{name} imports {trainer}"


# run in a process where remoteclip.weights.fetch cannot be imported (None in sys.modules):
# score a zoo release placed by hand, then train a run from random weights and export it
WITHOUT_FETCH = """
import json, sys
sys.modules["remoteclip.weights.fetch"] = None  # an import of it raises ImportError
from remoteclip.evaluate.features import embed_images, embed_texts
from remoteclip.evaluate.models import load
from remoteclip.train.__main__ import main as train
spec, split, shards, out = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3], sys.argv[4]
model, preprocess, tokenizer = load(spec)
images = embed_images(model, preprocess, split, "cpu", 16, 0)
texts = embed_texts(model, tokenizer, split, ["a photo of {}."], [], "cpu")
settings = {"model": {"arch": "tiny-test-ViT", "pretrained": None}, "train": {"batch_size": 16, "steps": 2, "warmup": 1, "workers": 0}}
code = train(["--shards", shards, "--out-dir", out, "--export", out + "/model.pt", "--settings", json.dumps(settings), "--threads", "1"])
print(json.dumps({"images": len(images["features"]), "classes": len(texts["class_features"]), "train": code}))
"""


def test_scoring_a_zoo_model_and_training_a_run_import_no_fetch_code(tmp_path, tiny_clip, tiny_model_dir, cls_split):
    """Download code (remoteclip.weights.fetch) belongs to the fetch_weights rule alone: a zoo
    release placed in the cache by hand (a SkyCLIP-style zip, whose member the loader takes
    out) scores, and a run trains and exports, with that module made unimportable."""
    import json
    from pathlib import Path

    from remoteclip.evaluate.features import scored_items
    from train_helpers import tiny_model_dir as train_model_dir
    from train_helpers import tiny_shards

    from .test_zoo_loaders import SKY_ZIP, sky_entry, skyclip_zip, spec_of

    spec = spec_of(tmp_path, "tiny-sky", sky_entry(f"https://example.org/ckpt/{SKY_ZIP}"))
    Path(spec["archive"]).parent.mkdir(parents=True)
    Path(spec["archive"]).write_bytes(skyclip_zip(tiny_clip[0].state_dict()))
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "split.json").write_text(json.dumps(cls_split))
    shards = tiny_shards(tmp_path / "train", n=32, per_shard=16)
    configs = os.pathsep.join([str(tiny_model_dir), str(train_model_dir(tmp_path / "train"))])
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "REMOTECLIP_MODEL_CONFIGS": configs, "OMP_NUM_THREADS": "1"}
    args = [str(tmp_path / n) for n in ("spec.json", "split.json")] + [str(shards), str(tmp_path / "run")]
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_FETCH, *args], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    scored = len(scored_items(cls_split)[0])
    assert result == {"images": scored, "classes": len(cls_split["classnames"]), "train": 0}
    assert (tmp_path / "run" / "model.pt").is_file()
