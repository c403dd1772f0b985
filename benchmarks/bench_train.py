"""Our training loop against open_clip_train on the same shards, model and batch, single
process, in one run; and the data loader alone against what a training step consumes.
Rates are samples over wall time of the steps after the first five (harmonic mean of the
per-step rates), so loader stalls count.

    .venv/bin/python benchmarks/bench_train.py [--steps 60] [--batch 64] [--arch RemoteCLIP-demo-ViT]
    .venv/bin/python benchmarks/bench_train.py --device cuda --arch ViT-B-32 --batch 256 --precision amp  # on a GPU

open_clip_train needs webdataset <= 0.2.86 (we use 1.x); the benchmark installs 0.2.86 into
benchmarks/.site (pip --target) and puts it first on open_clip_train's PYTHONPATH only.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# a folder holding webdataset 0.2.86 for open_clip_train (BENCH_WEBDATASET_SITE: an existing one)
SITE = Path(os.environ.get("BENCH_WEBDATASET_SITE", Path(__file__).resolve().parent / ".site"))

OPENCLIP_TRAIN = """
import sys, open_clip
from remoteclip.models import register_model_configs
register_model_configs()
import runpy
sys.argv = ["open_clip_train.main"] + sys.argv[1:]
runpy.run_module("open_clip_train.main", run_name="__main__")
"""


def _render(job):
    from remoteclip.synthetic.scenes import SCENES, render_scene

    i, size, path = job
    kinds = list(SCENES)
    Image.fromarray(render_scene(np.random.default_rng(i), kinds[i % len(kinds)], size).image).save(path, quality=90)


def make_shards(root: Path, n: int, size: int) -> Path:
    from remoteclip.parallel import available_cores, imap
    from remoteclip.shards import ShardSettings, build_shards
    from remoteclip.synthetic.scenes import SCENES

    kinds = list(SCENES)
    (root / "img").mkdir(parents=True, exist_ok=True)
    jobs = [(i, size, root / "img" / f"{i}.jpg") for i in range(n)]
    list(imap(_render, jobs, available_cores(), chunksize=16))
    rows = []
    for i in range(n):
        path = root / "img" / f"{i}.jpg"
        rows.append(
            {
                "image": str(path),
                "source": "bench",
                "captions": [f"a photo of a {kinds[i % len(kinds)]} {k}" for k in range(5)],
            }
        )
    build_shards(
        rows,
        root / "shards",
        ShardSettings(max_side=size, samples_per_shard=500, jpeg_quality=90, workers=available_cores()),
    )
    return root / "shards"


def ensure_old_webdataset() -> None:
    if not (SITE / "webdataset").is_dir():  # pip --target from PyPI (needs the package index)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(SITE),
                "webdataset==0.2.86",
            ],
            check=True,
        )


def ours(
    shards, steps, batch, arch, workers, threads, device, precision, out: Path | None = None
) -> tuple[float, list[float]]:
    """Steady-state samples/s and per-step data waits; the run's log.csv and stdout.txt go to `out`."""
    out = Path(out or tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "model": {"arch": arch, "pretrained": None},
        "train": {
            "batch_size": batch,
            "steps": steps,
            "lr": 1e-4,
            "warmup": 5,
            "workers": workers,
            "log_every": 1,
            "checkpoint_every": 10**6,
            "device": device,
            "precision": precision,
        },
    }
    with open(out / "stdout.txt", "w") as stdout:  # a file, so a run killed by a time limit leaves its output
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "remoteclip.train",
                "--shards",
                str(shards),
                "--out-dir",
                str(out),
                "--settings",
                json.dumps(settings),
                "--threads",
                str(threads),
            ],
            cwd=REPO,
            stdout=stdout,
            stderr=subprocess.STDOUT,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"remoteclip.train failed:\n{(out / 'stdout.txt').read_text()[-3000:]}")
    with open(out / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    rates = [float(r["samples_per_s"]) for r in rows[5:]]  # skip the warm-up steps
    return statistics.harmonic_mean(rates), [float(r["data_s"]) for r in rows[5:]]


def openclip_train(shards, steps, batch, arch, workers, threads, device, precision) -> float:
    ensure_old_webdataset()
    tars = sorted(Path(shards).glob("shard-*.tar"))
    urls = str(Path(shards) / f"shard-{{{0:06d}..{len(tars) - 1:06d}}}.tar")
    logs = Path(tempfile.mkdtemp())
    args = [
        "--train-data",
        urls,
        "--train-num-samples",
        str(steps * batch),
        "--dataset-type",
        "webdataset",
        "--batch-size",
        str(batch),
        "--precision",
        "fp32" if device == "cpu" else precision,
        "--workers",
        str(workers),
        "--model",
        arch,
        "--epochs",
        "1",
        "--lr",
        "1e-4",
        "--warmup",
        "5",
        "--log-every-n-steps",
        "1",
        "--save-frequency",
        "0",
        "--logs",
        str(logs),
        "--name",
        "bench",
        "--seed",
        "0",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SITE), str(REPO / "src")]),
        "OMP_NUM_THREADS": str(threads),
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "0") if device != "cpu" else "",
    }
    proc = subprocess.run(
        [sys.executable, "-c", OPENCLIP_TRAIN, *args], env=env, cwd=REPO, capture_output=True, text=True
    )
    text = proc.stdout + proc.stderr
    rates = [float(m) for m in re.findall(r"([\d.]+)/s/gpu", text)]
    if proc.returncode != 0 or not rates:
        raise RuntimeError(f"open_clip_train failed:\n{text[-3000:]}")
    return statistics.harmonic_mean(rates[5:] or rates)


def loader_alone(shards, batch, arch, workers, device="cpu", seconds=10.0) -> float:
    import open_clip
    from torch.utils.data import DataLoader

    from remoteclip.models import create, register_model_configs
    from remoteclip.train.data import Augment, GlobalBatchSampler, ShardDataset, ShardIndex, collate

    register_model_configs()
    model, _, _ = create(arch, None)
    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
    index = ShardIndex.build(sorted(Path(shards).glob("*.tar")))
    data = ShardDataset(index, Augment(size, normalize_on_device=device != "cpu"), open_clip.get_tokenizer(arch))
    sampler = GlobalBatchSampler(len(index), batch, 1, 0, 0, steps=10**6)
    loader = DataLoader(
        data, batch_sampler=sampler, num_workers=workers, collate_fn=collate, prefetch_factor=4 if workers else None
    )
    it, n = iter(loader), 0
    next(it)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        images, _ = next(it)
        n += len(images)
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--arch", default="RemoteCLIP-demo-ViT")
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--precision", default="amp_bf16", help="open_clip_train precision on CUDA (ours uses bf16 autocast)"
    )
    ap.add_argument("--shards", default=None, help="use these shards instead of rendering new ones")
    ap.add_argument("--make-shards", default=None, help="only render shards into this folder and stop")
    args = ap.parse_args()
    if args.make_shards:
        make_shards(Path(args.make_shards), args.images, args.size)
        return
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(args.shards) if args.shards else make_shards(Path(tmp), args.images, args.size)
        common = (shards, args.steps, args.batch, args.arch, args.workers, args.threads, args.device)
        ours_rate, data_wait = ours(*common, "auto")
        theirs = openclip_train(*common, args.precision)
        alone = loader_alone(shards, args.batch, args.arch, args.workers, args.device)
        print(
            f"device {args.device}, {args.arch}, batch {args.batch}, {args.workers} loader worker(s), "
            f"{args.threads} threads"
        )
        print(
            f"  remoteclip.train      {ours_rate:9.1f} samples/s (steady state; mean data wait "
            f"{statistics.mean(data_wait) * 1e3:.1f} ms per step)"
        )
        print(f"  open_clip_train.main  {theirs:9.1f} samples/s")
        print(f"  ratio ours/theirs     {ours_rate / theirs:9.2f}")
        print(f"  loader alone          {alone:9.1f} images/s -> headroom x{alone / ours_rate:.2f} over training")


if __name__ == "__main__":
    main()
