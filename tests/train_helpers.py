"""A tiny open_clip architecture and tiny shards, so training tests take seconds."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def tiny_model_dir(root: Path) -> Path:
    folder = root / "models"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny-test-ViT.json").write_text(json.dumps(TINY))
    return folder


def tiny_shards(root: Path, n: int = 96, per_shard: int = 40) -> Path:
    from remoteclip.shards import ShardSettings
    from remoteclip.shards.build import build_shards
    from remoteclip.synthetic.scenes import SCENES, render_scene

    kinds = list(SCENES)
    rows = []
    for i in range(n):
        path = root / "img" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(render_scene(np.random.default_rng(i), kinds[i % len(kinds)], 64).image).save(path)
        rows.append(
            {
                "image": str(path),
                "source": "t",
                "captions": [f"a photo of {kinds[i % len(kinds)]} number {k}" for k in range(5)],
            }
        )
    build_shards(rows, root / "shards", ShardSettings(max_side=48, samples_per_shard=per_shard))
    return root / "shards"


def settings(**train) -> dict:
    base = {
        "batch_size": 16,
        "steps": 6,
        "lr": 5e-4,
        "warmup": 2,
        "workers": 0,
        "log_every": 1,
        "checkpoint_every": 2,
        "seed": 0,
    }
    return {"model": {"arch": "tiny-test-ViT", "pretrained": None}, "train": {**base, **train}}


def env(models: Path) -> dict:
    return {
        **os.environ,
        "REMOTECLIP_MODEL_CONFIGS": str(models),
        "PYTHONPATH": str(REPO / "src"),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }


def train_cmd(
    shards: Path,
    out: Path,
    export: Path | None,
    cfg: dict,
    nproc: int = 1,
    threads: int | None = None,
    stop_after: int | None = None,
) -> list[str]:
    """`threads`: the CPUs of the whole launch (--threads), by default one per process."""
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        if nproc > 1
        else [sys.executable]
    )
    args = [
        "-m",
        "remoteclip.train",
        "--shards",
        str(shards),
        "--out-dir",
        str(out),
        "--settings",
        json.dumps(cfg),
        "--threads",
        str(threads or nproc),
    ]
    if export:
        args += ["--export", str(export)]
    if stop_after:
        args += ["--stop-after", str(stop_after)]
    return launcher + args


def run_training(
    shards, out, export, cfg, models, nproc=1, timeout=300, threads=None, stop_after=None, open_files=None, check=True
):
    """`open_files`: the training process's RLIMIT_NOFILE (soft and hard), as a cluster may set it."""
    limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))) if open_files else None
    proc = subprocess.run(
        train_cmd(shards, out, export, cfg, nproc, threads, stop_after),
        capture_output=True,
        text=True,
        env=env(models),
        timeout=timeout,
        cwd=REPO,
        preexec_fn=limit,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"training failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def step_gradients(loss_name: str, images, texts, accum: int = 1, rank: int = 0, world: int = 1, dtype=None):
    """(loss, {parameter: gradient}) of one training step of the tiny ViT as the loop takes it:
    the loss of train.loss over the global batch (`world` ranks: this rank's `images`, DDP
    averaging), `accum` > 1 through the loop's feature-cached accumulation. The same initial
    weights on every rank and in every call; `dtype` (e.g. torch.float64) the model's and the
    images' (float32 rounding alone moves a near-cancelling gradient by ~1e-5 of its size)."""
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    from remoteclip.models import create
    from remoteclip.train import losses
    from remoteclip.train.loop import _accumulated_step, _step_loss
    from remoteclip.train.settings import TrainSettings

    options = TrainSettings(steps=1).loss_options
    torch.manual_seed(1)
    model, _, _ = create("tiny-test-ViT", None)
    if dtype is not None:
        model, images = model.to(dtype), images.to(dtype)
    losses.prepare_model(model, loss_name, options)
    wrapped = DDP(model) if world > 1 else model
    loss_fn = losses.build(loss_name, options, rank=rank, world_size=world)
    if accum == 1:
        loss = _step_loss(wrapped, loss_fn, images, texts, None)
        loss.backward()
    else:
        micro = list(zip(images.chunk(accum), texts.chunk(accum)))
        loss = _accumulated_step(wrapped, loss_fn, micro, None, torch.amp.GradScaler("cpu", enabled=False))
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
