"""The evaluation suite on one model against CLIP_benchmark run task by task (zero-shot,
retrieval, linear probe: one `clip_benchmark eval --task ...` each, as a user runs it), on the
same images and model, with the metrics asserted.

Data: a synthetic AID-layout scene-classification set (80/20 split by file name) and an
RSICD-layout retrieval test split, built by the workflow's own split code; model: the demo's
RemoteCLIP-demo-ViT, seeded random weights, fp32 on the CPU (CLIP_benchmark with amp off).
CLIP_benchmark 1.6.2 runs in a process of its own with its pinned dependencies
(tests/peers.py installs them into .peers/; tests/evaluate/clip_benchmark_peer.py is the
runner the agreement tests use); its time is measured inside that process, after the imports,
so interpreter start-up is not charged to it.

Asserted: zero-shot top-1, top-5 and mean per-class recall equal; the six retrieval recalls
equal; for the linear probe, the image features CLIP_benchmark caches for its probe equal ours
(the two probes then train differently: ours L-BFGS logistic regression with the weight decay
chosen on a validation part of the train split, CLIP_benchmark 10 AdamW epochs with weight decay
0 when no validation split is given, so both accuracies are reported, not asserted equal).

Ours computes each benchmark's features once and runs every task on them (as the `features`
and `evaluate` rules do); the suite also runs k-NN and few-shot, which CLIP_benchmark has no
task for: the total row compares the three shared tasks, the note gives the whole suite.

    .venv/bin/python benchmarks/bench_eval.py [--cls-images 400] [--ret-images 300]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchlib import REPO, Row, add_json_flag, report, timed

sys.path.insert(0, str(REPO / "tests"))
from peers import CLIP_BENCHMARK, install, python_path  # noqa: E402

ARCH = "RemoteCLIP-demo-ViT"
MODELS = REPO / "config" / "models"
PEER = REPO / "tests" / "evaluate" / "clip_benchmark_peer.py"
TIMED_PEER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import clip_benchmark_peer as peer
start = time.perf_counter()
metrics = peer.main(*sys.argv[2:])
print(json.dumps({"seconds": time.perf_counter() - start, "metrics": metrics}, default=str))
"""


def splits(root: Path, cls_images: int, ret_images: int) -> dict[str, dict]:
    """The two benchmarks' split files, written by the workflow's split code."""
    from remoteclip.config import DatasetSpec
    from remoteclip.evaluate.sets import classification_set, retrieval_set
    from remoteclip.synthetic import SynthSpec, synthesize

    scenes, rsicd = root / "scenes", root / "rsicd"
    synthesize(SynthSpec("scenes", "class_folders", cls_images, mix=0.5, clutter=0.5), scenes, progress=False)
    synthesize(SynthSpec("rsicd", "karpathy", ret_images, splits={"test": 1.0}, mix=0.3), rsicd, progress=False)
    cls = DatasetSpec("scenes", "CLS", "class_folders", scenes, {}, None, False)
    ret = DatasetSpec("rsicd", "RET", "karpathy", rsicd, {}, None, False)
    return {"scenes": classification_set(cls, None, 0.8), "rsicd": retrieval_set(ret)}


def model_state(path: Path):
    """A seeded random RemoteCLIP-demo-ViT: (model, transform, tokenizer), its state saved to `path`."""
    import open_clip
    import torch

    from remoteclip.models import register_model_configs

    register_model_configs()
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(ARCH)
    torch.save(model.state_dict(), path)
    return model.eval(), preprocess, open_clip.get_tokenizer(ARCH)


def settings() -> dict:
    from remoteclip.config import load

    ev = load(REPO / "config" / "config.yaml", REPO / "workflow" / "schemas" / "config.schema.yaml")["evaluation"]
    return {k: ev[k] for k in ("knn", "linear_probe", "fewshot", "counting", "templates", "retrieval")}


def ours(model, preprocess, tokenizer, split: dict, tasks: tuple[str, ...], config: dict) -> tuple[float, dict]:
    """Features once, then every task on them: (seconds, {task: metrics}) and the features."""
    from remoteclip.evaluate.features import embed
    from remoteclip.evaluate.tasks import run

    def suite():
        images, texts = embed(model, preprocess, tokenizer, split, config["templates"], ["words"], "cpu", workers=0)
        results, probe = {"_images": images}, None
        for task in tasks:
            result = run(task, split.get("name", "bench"), {"name": ARCH}, split, images, texts, config, probe)
            probe = result if task == "linear_probe" else probe
            results[task] = result["metrics"]
        return results

    return timed(suite)


def clip_benchmark(folder: Path, task: str, split_path: Path, state: Path, *extra: str) -> tuple[float, dict]:
    """One CLIP_benchmark task in its own process: (seconds inside it, its metrics)."""
    args = [str(PEER.parent), task, str(split_path), str(MODELS), str(state), ARCH, *extra]
    proc = subprocess.run(
        [sys.executable, "-c", TIMED_PEER, *args], capture_output=True, text=True, env=python_path(folder), timeout=1800
    )
    if proc.returncode != 0:
        raise RuntimeError(f"CLIP_benchmark {task} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["seconds"], out["metrics"]


def check_zeroshot(ours_m: dict, theirs: dict) -> None:
    for key in ("acc1", "acc5", "mean_per_class_recall"):
        assert abs(ours_m[key] - 100 * theirs[key]) < 1e-6, f"zero-shot {key}: {ours_m[key]} vs {100 * theirs[key]}"


def check_retrieval(ours_m: dict, theirs: dict) -> None:
    for k in (1, 5, 10):
        for mine, its in (("image_to_text", "text_retrieval"), ("text_to_image", "image_retrieval")):
            a, b = ours_m[f"{mine}_R@{k}"], 100 * theirs[f"{its}_recall@{k}"]
            assert abs(a - b) < 1e-4, f"{mine} R@{k}: {a} vs {b}"


def check_probe_features(images: dict, feature_dir: Path) -> float:
    """Largest difference between CLIP_benchmark's cached probe features and ours."""
    import torch

    train = torch.load(feature_dir / "features_train.pt").numpy()
    test = torch.load(feature_dir / "features_test.pt").numpy()
    mine = images["features"]
    gap = max(np.abs(train - mine[~images["is_test"]]).max(), np.abs(test - mine[images["is_test"]]).max())
    assert gap < 1e-4, f"probe features differ by {gap}"
    return float(gap)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cls-images", type=int, default=400)
    ap.add_argument("--ret-images", type=int, default=300)
    add_json_flag(ap)
    args = ap.parse_args()
    folder, why = install("clip_benchmark", CLIP_BENCHMARK)
    if folder is None:
        raise SystemExit(why)
    config = settings()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = splits(tmp, args.cls_images, args.ret_images)
        for name, split in data.items():
            (tmp / f"{name}.json").write_text(json.dumps(split))
        model, preprocess, tokenizer = model_state(tmp / "state.pt")
        t_cls3, cls3 = ours(model, preprocess, tokenizer, data["scenes"], ("zeroshot", "linear_probe"), config)
        t_zs, _ = ours(model, preprocess, tokenizer, data["scenes"], ("zeroshot",), config)
        t_ret, ret = ours(model, preprocess, tokenizer, data["rsicd"], ("retrieval",), config)
        t_all, _ = ours(
            model, preprocess, tokenizer, data["scenes"], ("zeroshot", "linear_probe", "knn", "fewshot"), config
        )
        templates = config["templates"]
        p_zs, zs = clip_benchmark(folder, "zeroshot", tmp / "scenes.json", tmp / "state.pt", *templates)
        p_ret, rt = clip_benchmark(folder, "retrieval", tmp / "rsicd.json", tmp / "state.pt", *templates)
        p_lp, lp = clip_benchmark(folder, "linear_probe", tmp / "scenes.json", tmp / "state.pt", str(tmp / "lp"))
        check_zeroshot(cls3["zeroshot"], zs)
        check_retrieval(ret["retrieval"], rt)
        gap = check_probe_features(cls3["_images"], tmp / "lp" / "bench")

    version = CLIP_BENCHMARK[0].split("==")[1]
    peer = f"CLIP_benchmark {version} (own process, amp off)"
    n_cls, n_ret = len(data["scenes"]["test"]), len(data["rsicd"]["images"])
    t_lp = t_cls3 - t_zs  # the probe on features already there: what it adds to zero-shot's pass
    ours_lp = cls3["linear_probe"]
    rows = [
        Row(
            f"zero-shot, {n_cls} test images, {len(data['scenes']['classes'])} classes",
            t_zs,
            p_zs,
            peer,
            "same top-1, top-5, mean per-class recall",
        ),
        Row(
            f"retrieval, {n_ret} images, {len(data['rsicd']['captions'])} captions",
            t_ret,
            p_ret,
            peer,
            "same six recalls (R@1/5/10 both ways)",
        ),
        Row(
            "linear probe (ours: on the features the zero-shot pass cached; theirs: features + probe)",
            t_lp,
            p_lp,
            peer,
            f"same probe features (max difference {gap:.1e}); accuracies differ by design",
            f"top-1 ours {ours_lp['acc1']:.1f} (L-BFGS, validated weight decay), CLIP_benchmark "
            f"{100 * lp['lp_acc1']:.1f} (AdamW 10 epochs, wd 0)",
        ),
        Row(
            "zero-shot + retrieval + linear probe, one model",
            t_cls3 + t_ret,
            p_zs + p_ret + p_lp,
            peer,
            "the three rows above",
            f"our whole suite (adds k-NN and few-shot, which CLIP_benchmark lacks): {t_all + t_ret:.1f} s",
        ),
    ]
    report(rows, args.json)


if __name__ == "__main__":
    main()
