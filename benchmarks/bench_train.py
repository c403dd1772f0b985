"""Our training loop against `open_clip_train.main` (what an open_clip user runs) on the same
shards, model, batch, steps and augmentation, single process, in one run; and the data loader
alone against what a training step consumes.

Same input: the shards are written once (`--per-shard` samples each, so there are many more
shards than loader workers: open_clip_train's WebDataset pipeline hands whole shards to its
workers) and both read them. Same augmentation: open_clip_train's train transform is
RandomResizedCrop(scale=(0.9, 1.0), ratio 3/4-4/3, bicubic), no flips or rotations, so ours
runs with `crop_scale: [0.9, 1.0]`, `hflip: false`, `rot90: false` for this comparison (the
recipe's default adds flips and 90-degree rotations). Both take `--steps` steps of `--batch`
samples (steps x batch <= images, so neither runs out within its epoch); asserted: both logged
every step with a finite loss. Rates are samples over wall time of the steps after the first
five (harmonic mean of the per-step rates), so loader stalls count.

    .venv/bin/python benchmarks/bench_train.py [--steps 40] [--batch 64] [--arch RemoteCLIP-demo-ViT]
    .venv/bin/python benchmarks/bench_train.py --device cuda --arch ViT-B-32 --batch 256 --precision amp  # on a GPU

open_clip_train needs webdataset <= 0.2.86 (we use 1.x); the benchmark installs 0.2.86 into
.bench/webdataset-0.2.86 (pip --target) and puts it first on open_clip_train's PYTHONPATH only
(BENCH_WEBDATASET_SITE names an existing folder instead, as gpu_check.sh does).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
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

from benchlib import REPO, Row, add_json_flag, install_peer, report

OLD_WEBDATASET = ("webdataset==0.2.86",)
# open_clip_train's train transform: RandomResizedCrop(scale=(0.9, 1.0)), no flips, no rotations
SAME_AUGMENTATION = {"crop_scale": [0.9, 1.0], "hflip": False, "rot90": False}

OPENCLIP_TRAIN = """
import sys, open_clip
from remoteclip.models import register_model_configs
register_model_configs()
import runpy
sys.argv = ["open_clip_train.main"] + sys.argv[1:]
runpy.run_module("open_clip_train.main", run_name="__main__")
"""


def _render(job):
    """One scene, saved in its four rotations (four distinct training images per render)."""
    from remoteclip.synthetic.scenes import SCENES, render_scene

    i, size, folder = job
    kinds = list(SCENES)
    image = Image.fromarray(render_scene(np.random.default_rng(i), kinds[i % len(kinds)], size).image)
    for turn in range(4):
        image.rotate(90 * turn).save(Path(folder) / f"{i}_{turn}.jpg", quality=90)


def make_shards(root: Path, n: int, size: int, per_shard: int = 50) -> Path:
    from remoteclip.parallel import available_cores, imap
    from remoteclip.shards import ShardSettings
    from remoteclip.shards.build import build_shards
    from remoteclip.synthetic.scenes import SCENES

    kinds = list(SCENES)
    (root / "img").mkdir(parents=True, exist_ok=True)
    scenes = -(-n // 4)
    list(imap(_render, [(i, size, root / "img") for i in range(scenes)], available_cores(), chunksize=8))
    rows = []
    for k in range(n):
        i, turn = divmod(k, 4)
        captions = [f"a photo of a {kinds[i % len(kinds)]} {c}" for c in range(5)]
        rows.append({"image": str(root / "img" / f"{i}_{turn}.jpg"), "source": "bench", "captions": captions})
    settings = ShardSettings(max_side=size, samples_per_shard=per_shard, jpeg_quality=90, workers=available_cores())
    build_shards(rows, root / "shards", settings)
    return root / "shards"


def old_webdataset_site() -> Path:
    """A folder holding webdataset 0.2.86 for open_clip_train (installed on first use)."""
    given = os.environ.get("BENCH_WEBDATASET_SITE")
    return Path(given) if given else install_peer("webdataset-0.2.86", OLD_WEBDATASET)


def ours(
    shards,
    steps,
    batch,
    arch,
    workers,
    threads,
    device,
    precision,
    out: Path | None = None,
    augmentation: dict | None = None,
    model: dict | None = None,
) -> tuple[float, list[float], list[float]]:
    """Steady-state samples/s, per-step data waits and losses; the run's log.csv and stdout.txt
    go to `out`. `augmentation`: train.* keys replacing the recipe's (crop_scale, hflip, rot90,
    or the speed switches loader, compile, ...); `model`: model.* keys (grad_checkpointing)."""
    out = Path(out or tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "model": {"arch": arch, "pretrained": None, **(model or {})},
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
            **(augmentation or {}),
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
    return statistics.harmonic_mean(rates), [float(r["data_s"]) for r in rows[5:]], [float(r["loss"]) for r in rows]


def openclip_train(shards, steps, batch, arch, workers, threads, device, precision) -> tuple[float, list[float]]:
    """Steady-state samples/s and per-step losses of open_clip_train.main on the shards."""
    site = old_webdataset_site()
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
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO / "src")]),
        "OMP_NUM_THREADS": str(threads),
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "0") if device != "cpu" else "",
    }
    proc = subprocess.run(
        [sys.executable, "-c", OPENCLIP_TRAIN, *args], env=env, cwd=REPO, capture_output=True, text=True
    )
    text = proc.stdout + proc.stderr
    rates = [float(m) for m in re.findall(r"([\d.]+)/s/gpu", text)]
    losses = [float(m) for m in re.findall(r" Loss: ([\d.]+)", text)]
    if proc.returncode != 0 or not rates:
        raise RuntimeError(f"open_clip_train failed:\n{text[-3000:]}")
    return statistics.harmonic_mean(rates[5:] or rates), losses


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
        n += len(next(it).texts)
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--arch", default="RemoteCLIP-demo-ViT")
    ap.add_argument("--images", type=int, default=2560, help="training images (at least steps x batch)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--per-shard", type=int, default=50, help="samples per shard (many more shards than workers)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--precision", default="amp_bf16", help="open_clip_train precision on CUDA (ours uses bf16 autocast)"
    )
    ap.add_argument("--shards", default=None, help="use these shards instead of rendering new ones")
    ap.add_argument("--make-shards", default=None, help="only render shards into this folder and stop")
    ap.add_argument("--loader-seconds", type=float, default=10.0, help="how long to time the loader alone")
    add_json_flag(ap)
    args = ap.parse_args()
    if args.make_shards:
        make_shards(Path(args.make_shards), args.images, args.size, args.per_shard)
        return
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(args.shards) if args.shards else make_shards(Path(tmp), args.images, args.size, args.per_shard)
        tars = len(list(shards.glob("shard-*.tar")))
        total = sum(json.loads((shards / "sizes.json").read_text()).values())
        assert total >= args.steps * args.batch, f"{total} samples, fewer than {args.steps} x {args.batch}"
        common = (shards, args.steps, args.batch, args.arch, args.workers, args.threads, args.device)
        ours_rate, data_wait, our_losses = ours(*common, "auto", augmentation=SAME_AUGMENTATION)
        theirs, their_losses = openclip_train(*common, args.precision)
        for name, losses in (("remoteclip.train", our_losses), ("open_clip_train", their_losses)):
            assert len(losses) >= args.steps and all(map(math.isfinite, losses)), f"{name}: {len(losses)} steps logged"
        alone = loader_alone(shards, args.batch, args.arch, args.workers, args.device, args.loader_seconds)
    import open_clip_train

    version = getattr(open_clip_train, "__version__", None) or _version("open_clip_torch")
    row = Row(
        f"training {args.arch}, {args.device}, batch {args.batch}, {args.steps} steps, {args.workers} loader "
        f"worker(s), {tars} shards",
        1000 / ours_rate,
        1000 / theirs,
        f"open_clip_train.main (open_clip_torch {version})",
        f"same shards, model, batch, steps, crop; both logged {args.steps} steps with finite losses",
        f"{ours_rate:.1f} vs {theirs:.1f} samples/s; losses first/last ours {our_losses[0]:.2f}/{our_losses[-1]:.2f}, "
        f"theirs {their_losses[0]:.2f}/{their_losses[-1]:.2f}; mean data wait {statistics.mean(data_wait) * 1e3:.1f} ms "
        f"per step; loader alone {alone:.0f} images/s (x{alone / ours_rate:.1f} what training consumes)",
        {"ours_samples_per_s": ours_rate, "theirs_samples_per_s": theirs, "loader_images_per_s": alone},
        unit="ms/sample",
    )
    report([row], args.json)


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    main()
