"""The evaluation suite with cached features against recomputing the features for every
task (what running CLIP_benchmark task by task does), on one model of a finished demo.

    .venv/bin/python benchmarks/bench_eval.py [--model demo_all] [--results results]

Needs a finished `make demo` (split files and the model). Both paths load the model once;
the difference is the number of feature passes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from remoteclip.config import load
from remoteclip.evaluate import features as F
from remoteclip.evaluate.models import load as load_model
from remoteclip.evaluate.registry import TASKS_BY_GROUP, resolve
from remoteclip.evaluate.tasks import run

REPO = Path(__file__).resolve().parents[1]


def embed(model, preprocess, tokenizer, split, settings):
    return F.embed(
        model, preprocess, tokenizer, split, settings["templates"], settings["counting"]["variants"], "cpu", 128, 1
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="demo_all")
    ap.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    ap.add_argument(
        "--arch",
        default=None,
        help="score a randomly initialised open_clip model of this "
        "architecture instead (e.g. ViT-B-32: features cost what they do on real models)",
    )
    args = ap.parse_args()
    config = load(args.config, REPO / "workflow" / "schemas" / "config.schema.yaml")
    ev = config["evaluation"]
    settings = {k: ev[k] for k in ("knn", "linear_probe", "fewshot", "counting", "templates")}
    spec = resolve(args.model, ev["models"][args.model], config)
    if args.arch:
        spec = {
            **spec,
            "name": args.arch,
            "arch": args.arch,
            "checkpoint": None,
            "pretrained": None,
            "quick_gelu": False,
        }
    model, preprocess, tokenizer = load_model(spec, "cpu")
    splits = {p.stem: json.loads(p.read_text()) for p in sorted(Path("results/splits").glob("*.json"))}

    start = time.perf_counter()
    for name, split in splits.items():
        images, texts = embed(model, preprocess, tokenizer, split, settings)
        probe = None
        for task in TASKS_BY_GROUP[split["group"]]:
            result = run(task, name, spec, split, images, texts, settings, probe)
            probe = result if task == "linear_probe" else probe
    cached = time.perf_counter() - start

    start = time.perf_counter()
    for name, split in splits.items():
        probe = None
        for task in TASKS_BY_GROUP[split["group"]]:
            images, texts = embed(model, preprocess, tokenizer, split, settings)  # per task, as CLIP_benchmark
            result = run(task, name, spec, split, images, texts, settings, probe)
            probe = result if task == "linear_probe" else probe
    recomputed = time.perf_counter() - start
    tasks = sum(len(TASKS_BY_GROUP[s["group"]]) for s in splits.values())
    print(f"{spec['name']}: {len(splits)} benchmarks, {tasks} tasks")
    print(f"  features once, all tasks   {cached:7.1f} s")
    print(f"  features per task          {recomputed:7.1f} s   ratio x{recomputed / cached:.2f}")


if __name__ == "__main__":
    main()
