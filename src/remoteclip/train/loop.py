"""The training loop: open_clip's model, tokenizer and loss (ClipLoss with its distributed
gather by default, or another of remoteclip.train.losses), torch DDP, AdamW, linear warm-up
then cosine, AMP on CUDA, exact resume."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import open_clip
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import licences
from ..devices import device_for
from ..models import create, export, load_strict, register_model_configs, unwrap
from ..shards.manifest import RunShards, read_run_shards
from ..weights.cache import open_clip_cache
from . import checkpoints, distributed, losses, speed
from .data import Augment, Batch, GlobalBatchSampler, ShardDataset, ShardIndex, collate, decode_on_device
from .mixing import Mixing, describe
from .reader import ensure_open_file_limit
from .settings import ModelSettings, TrainSettings, fingerprint

log = logging.getLogger(__name__)


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on gains, biases, norms, embeddings of size 1 and the logit scale
    (open_clip's rule)."""
    decay: list[torch.nn.Parameter] = []
    rest: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        exclude = p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
        (rest if exclude else decay).append(p)
    return [{"params": rest, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def lr_lambda(s: TrainSettings, total: int):
    def factor(step: int) -> float:
        if step < s.warmup:
            return (step + 1) / max(1, s.warmup)
        progress = (step - s.warmup) / max(1, total - s.warmup)
        floor = s.min_lr / s.lr if s.lr else 0.0
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def autocast_dtype(s: TrainSettings, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or s.precision == "fp32":
        return None
    if s.precision == "fp16" or (s.precision == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def training_shards(shards_dir: Path, skip_bad: bool, listed: RunShards | None = None) -> tuple[ShardIndex, list[str]]:
    """The run's samples (its manifest's shards minus what de-duplication removed) and the
    content digests of the shards it reads (the fingerprint's); `listed`: the manifest, when
    already read."""
    listed = listed or read_run_shards(shards_dir)
    index = ShardIndex.build(listed.paths, listed.sizes, listed.excluded, skip_bad=skip_bad)
    used = set(index.shards)
    return index, [d for p, d in zip(listed.paths, listed.digests) if p in used]


def source_mixing(index: ShardIndex, listed: RunShards, weights: Mapping[str, float]) -> Mixing | None:
    """The run's samples by source with their weights (remoteclip.train.mixing); None for
    shards without a manifest naming their sources, where weights cannot apply."""
    source_of = dict(zip(listed.paths, listed.sources))
    shard_sources = [source_of[path] for path in index.shards]
    if any(s is None for s in shard_sources):
        if weights:
            raise ValueError(
                f"per-source weights ({', '.join(weights)}) need the run's manifest.json, which names each "
                "shard's source; the shards folder has none"
            )
        return None
    return Mixing.of([str(s) for s in shard_sources], index.shard, weights)


class TrainingLog:
    # samples_per_s: the whole run's; tflops: one device's arithmetic per second; mfu: that over
    # one device's peak (speed.device_rates); replaced: samples unreadable in this step, each
    # replaced by the next readable one
    FIELDS = [
        "step",
        "epoch",
        "loss",
        "lr",
        "logit_scale",
        "samples_per_s",
        "data_s",
        "step_s",
        "tflops",
        "mfu",
        "world_size",
        "replaced",
    ]

    def __init__(self, path: Path, resume_step: int, enabled: bool):
        self.enabled = enabled
        if not enabled:
            return
        rows = []
        if path.is_file() and resume_step:  # keep the history of the steps the resumed run keeps
            with open(path) as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
        self.fh = open(path, "w", newline="")
        # restval: a column added since the resumed run's log was written stays empty there
        self.writer = csv.DictWriter(self.fh, fieldnames=self.FIELDS, restval="", extrasaction="ignore")
        self.writer.writeheader()
        self.writer.writerows(rows)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb: Any = SummaryWriter(str(path.parent / "tensorboard"))
        except Exception:  # tensorboard is optional
            self.tb = None

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        self.writer.writerow({k: row[k] for k in self.FIELDS})
        self.fh.flush()
        if self.tb:
            for k in ("loss", "lr", "logit_scale", "samples_per_s"):
                self.tb.add_scalar(f"train/{k}", row[k], row["step"])

    def close(self) -> None:
        if self.enabled:
            self.fh.close()
            if self.tb:
                self.tb.close()


def total_steps(train_s: TrainSettings, per_epoch: int) -> int:
    """Optimiser steps: `steps` when given, else `epochs` of `per_epoch` steps (at least one)."""
    if train_s.steps:
        return train_s.steps
    assert train_s.epochs is not None  # TrainSettings refuses neither steps nor epochs
    return max(1, round(train_s.epochs * max(per_epoch, 1)))


def logit_scale_of(model: torch.nn.Module) -> torch.Tensor:
    scale = unwrap(model).logit_scale
    assert isinstance(scale, torch.Tensor)
    return scale


def _step_loss(model, loss_fn, images, texts, dtype):
    with torch.autocast(images.device.type, dtype=dtype) if dtype else nullcontext():
        # (image features, text features, logit scale[, logit bias]): the bias where SigLIP has one
        image_features, text_features, *logit_params = model(images, texts)
        return loss_fn(image_features, text_features, *logit_params)


def _accumulated_step(model, loss_fn, micro_batches, dtype, scaler):
    """open_clip's accumulation: cache every micro-batch's features without gradients, then
    recompute one micro-batch at a time with gradients inside the full-batch loss, so the
    contrastive negatives are the whole global batch. Each of those losses is the whole batch's
    loss, so the logit scale (and SigLIP's bias) take its gradient from one of them only, the
    last, where DDP synchronises; open_clip's train.py counts it once per micro-batch."""
    ctx = (lambda: torch.autocast(micro_batches[0][0].device.type, dtype=dtype)) if dtype else nullcontext
    cached = []
    with torch.no_grad(), ctx():
        for images, texts in micro_batches:
            cached.append(model(images, texts)[:2])
    total = 0.0
    for k, (images, texts) in enumerate(micro_batches):
        # hasattr, not isinstance: a compiled DDP model hands no_sync through to DDP
        sync = model.no_sync() if hasattr(model, "no_sync") and k < len(micro_batches) - 1 else nullcontext()
        with sync, ctx():
            image_features, text_features, *logit_params = model(images, texts)
            if k < len(micro_batches) - 1:
                logit_params = [p.detach() for p in logit_params]
            imgs = torch.cat([f[0] for f in cached[:k]] + [image_features] + [f[0] for f in cached[k + 1 :]])
            txts = torch.cat([f[1] for f in cached[:k]] + [text_features] + [f[1] for f in cached[k + 1 :]])
            loss = loss_fn(imgs, txts, *logit_params)
            scaler.scale(loss).backward()
        total = loss.detach()
    return total


def next_micro_batches(
    batches: Iterator[Batch], accum_steps: int, augment: Augment, device: torch.device, dataset: ShardDataset
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], int]:
    """One step's (images, tokens) micro-batches on `device`, ready for the model, and how many
    unreadable samples were replaced to fill them (by the loader workers, and by the device's
    decoder with the device loader)."""
    micro, replaced = [], 0
    for batch in (next(batches) for _ in range(accum_steps)):
        replaced += batch.replaced
        if dataset.encoded:
            images, texts, passed = decode_on_device(augment, batch, device, dataset)
            replaced += passed
        else:
            assert batch.images is not None
            images, texts = batch.images.to(device, non_blocking=True), batch.texts
            if augment.normalize_on_device:
                images = augment.normalize(images)
        micro.append((images, texts.to(device, non_blocking=True)))
    return micro, replaced


def resume(world: distributed.World, out_dir: Path, fingerprint: str) -> dict | None:
    """The state to resume from, the same on every rank. Rank 0 alone chooses (and moves another
    recipe's checkpoints aside: ranks moving the same files collide or see a half-moved folder);
    the others wait for its choice and read that file."""
    chosen = checkpoints.choose(out_dir, fingerprint) if world.main else None
    path = distributed.from_main(world, str(chosen[0]) if chosen else None)
    if world.main:
        state = chosen[1] if chosen else None
    else:
        state = checkpoints.load(Path(path)) if path else None
    # every rank has read the checkpoint before rank 0 may write new ones and prune it
    distributed.barrier(world)
    return state


def load_model_state(model: torch.nn.Module, state: dict, loss: str, out_dir: Path) -> None:
    """A resume checkpoint's weights, strictly; a checkpoint without the loss's own parameters
    (SigLIP's logit bias or scale) is named as such rather than as a bare key error."""
    missing = [k for k in ("logit_scale", "logit_bias") if hasattr(model, k) and getattr(model, k) is not None]
    missing = [k for k in missing if k not in state]
    if missing:
        raise checkpoints.CheckpointMismatch(
            f"the newest resume checkpoint in {out_dir} has no {', '.join(missing)}, which train.loss "
            f"{loss!r} learns; it was not written by this recipe: move it away to start afresh"
        )
    load_strict(model, state, f"the newest resume checkpoint in {out_dir}")


@dataclasses.dataclass
class Model:
    """The model a run trains and what goes with it: the augmentation its preprocessing implies,
    its tokenizer, and the parameters the export leaves out (SigLIP's bias on a CLIP arch)."""

    net: torch.nn.Module
    augment: Augment
    tokenizer: Any
    training_only: tuple[str, ...]
    channels_last: bool
    image_size: int


@dataclasses.dataclass
class Optimisation:
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    dtype: torch.dtype | None  # autocast's, None for float32


def start_world(train_s: TrainSettings, threads: int | None) -> tuple[distributed.World, torch.device]:
    """This process's rank and device, the process group joined, its share of the node's CPUs."""
    world = distributed.detect()
    device = device_for(train_s.device, world.local_rank)
    distributed.init(world, device)
    share = distributed.threads_per_rank(threads, world.local_size)
    if share:
        torch.set_num_threads(share)
    log.info(
        "rank %d: %d torch threads (%s CPUs shared by %d local ranks)",
        world.rank,
        torch.get_num_threads(),
        threads,
        world.local_size,
    )
    return world, device


def build_model(
    model_s: ModelSettings, train_s: TrainSettings, device: torch.device, weights_cache: str | Path | None
) -> Model:
    """The run's starting model (seeded: the same on every rank), fitted to its loss."""
    torch.manual_seed(train_s.seed)
    register_model_configs()
    net, _, _ = create(
        model_s.arch,
        model_s.pretrained,
        device,
        True if model_s.force_quick_gelu else None,  # None: as the starting weights were trained
        trust_checkpoint=model_s.trust_checkpoint,
        cache_dir=open_clip_cache(weights_cache) if weights_cache else None,
        pretrained_towers=model_s.pretrained_towers,
        seed=train_s.seed,
        image_init=model_s.image_init,
        image_checkpoint=model_s.image_checkpoint,
        weights_cache=weights_cache,
    )
    # SigLIP's bias is a training-only parameter: the export leaves it out (see losses.prepare_model)
    training_only = losses.prepare_model(net, train_s.loss, train_s.loss_options)
    if model_s.grad_checkpointing:
        net.set_grad_checkpointing(True)
    preprocess = open_clip.get_model_preprocess_cfg(net)
    size = preprocess["size"] if isinstance(preprocess["size"], int) else preprocess["size"][0]
    augment = Augment(
        size,
        train_s.crop_scale,
        hflip=train_s.hflip,
        rot90=train_s.rot90,
        simclr=train_s.simclr,
        mean=tuple(preprocess["mean"]),
        std=tuple(preprocess["std"]),
        normalize_on_device=device.type == "cuda" or train_s.loader == "device",
    )
    channels_last = speed.use_channels_last(train_s.channels_last, net, device)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    return Model(net, augment, open_clip.get_tokenizer(model_s.arch), training_only, channels_last, size)


def build_optimisation(
    model: torch.nn.Module, train_s: TrainSettings, total: int, device: torch.device
) -> Optimisation:
    """AdamW (no decay on gains, biases and the logit scale), warm-up then cosine, AMP's scaler."""
    optimizer = torch.optim.AdamW(
        parameter_groups(model, train_s.weight_decay),
        lr=train_s.lr,
        betas=train_s.betas,
        eps=train_s.eps,
        fused=speed.use_fused_adamw(train_s.fused_adamw, device) or None,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(train_s, total))
    dtype = autocast_dtype(train_s, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    return Optimisation(optimizer, scheduler, scaler, dtype)


def restore(state: dict | None, model: Model, opt: Optimisation, loss: str, out_dir: Path) -> int:
    """Load a resume checkpoint's model, optimiser, schedule, scaler and RNG states (before the
    data loader draws its seed); returns the step it was written at (0: a fresh start)."""
    if state is None:
        return 0
    load_model_state(model.net, state["model"], loss, out_dir)
    opt.optimizer.load_state_dict(state["optimizer"])
    opt.scheduler.load_state_dict(state["scheduler"])
    opt.scaler.load_state_dict(state["scaler"])
    checkpoints.set_rng_state(state["rng"])
    return state["step"]


def wrap(model: torch.nn.Module, train_s: TrainSettings, world: distributed.World, device: torch.device):
    """What the step calls: DDP over the ranks, compiled when asked; `model` stays what is saved."""
    wrapped = DDP(model, device_ids=[device.index] if device.type == "cuda" else None) if world.size > 1 else model
    return speed.compile_model(wrapped, train_s.compile) if train_s.compile else wrapped


PREFETCH = 2  # batches each loader worker prepares ahead


def check_open_files(train_s: TrainSettings, world: distributed.World) -> None:
    """Before anything is built: the open files the loader will need fit the process's limit
    (reader.ensure_open_file_limit). A worker hands each tensor over as an open file: a
    device-loader batch holds one per JPEG."""
    per_batch = 3 + (train_s.batch_size // world.size // train_s.accum_steps if train_s.loader == "device" else 0)
    ensure_open_file_limit(train_s.workers, PREFETCH if train_s.workers else 0, per_batch, train_s.open_shards)


def build_loader(
    index: ShardIndex,
    model: Model,
    train_s: TrainSettings,
    world: distributed.World,
    total: int,
    start: int,
    device,
    mix: Mixing | None = None,
) -> tuple[ShardDataset, DataLoader]:
    """This rank's share of every global batch from step `start` on (data.GlobalBatchSampler);
    `mix`: per-source weights other than 1 (None: every sample once an epoch)."""
    sampler = GlobalBatchSampler(
        len(index), train_s.batch_size, world.size, world.rank, train_s.seed, total, start, train_s.accum_steps, mix
    )
    encoded = train_s.loader == "device"
    dataset = ShardDataset(index, model.augment, model.tokenizer, train_s.seed, encoded, train_s.open_shards)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=train_s.workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=PREFETCH if train_s.workers else None,
    )
    return dataset, loader


@dataclasses.dataclass
class Run:
    """Everything a run's steps use, built once by `prepare`."""

    world: distributed.World
    device: torch.device
    model: Model
    opt: Optimisation
    wrapped: torch.nn.Module  # what the step calls (DDP, compiled); model.net is what is saved
    loss_fn: torch.nn.Module
    dataset: ShardDataset
    loader: DataLoader
    index: ShardIndex
    mix: Mixing | None  # the samples by source and their weights (None: shards without a manifest)
    listed: RunShards  # the manifest: its sources' licences and terms
    total: int  # optimiser steps of the whole run
    per_epoch: int
    start: int  # the step this call starts at (a resumed checkpoint's)
    fingerprint: str
    flops: float  # training FLOPs per sample (rank 0 counts them)
    peak: float | None  # one device's peak TFLOP/s, when known


def prepare(
    model_s: ModelSettings,
    train_s: TrainSettings,
    shards_dir: Path,
    out_dir: Path,
    threads: int | None,
    weights_cache: str | Path | None,
    weights: Mapping[str, float] | None = None,
) -> Run:
    """The world, the model, the data, the optimiser and, when a checkpoint of this recipe
    exists, the state it resumes from; in the order that keeps every RNG draw of a run the
    same whether it starts fresh or resumes."""
    world, device = start_world(train_s, threads)
    check_open_files(train_s, world)
    model = build_model(model_s, train_s, device, weights_cache)
    flops = speed.flops_per_sample(model.net, model.image_size, model.tokenizer(["a"]), device) if world.main else 0.0
    listed = read_run_shards(shards_dir)
    index, digests = training_shards(shards_dir, train_s.skip_bad_shards, listed)
    mix = source_mixing(index, listed, weights or {})
    weighted = mix if mix is not None and not mix.uniform() else None  # weights 1: the plain sampler
    per_epoch = (weighted.epoch_size() if weighted else len(index)) // train_s.batch_size
    total = total_steps(train_s, per_epoch)
    print_ = fingerprint(model_s, train_s, digests, dict(zip(weighted.names, weighted.weights)) if weighted else None)
    opt = build_optimisation(model.net, train_s, total, device)
    peak = speed.peak_tflops(device, opt.dtype, train_s.peak_tflops)
    start = restore(resume(world, out_dir, print_), model, opt, train_s.loss, out_dir)
    wrapped = wrap(model.net, train_s, world, device)
    loss_fn = losses.build(train_s.loss, train_s.loss_options, rank=world.rank, world_size=world.size)
    dataset, loader = build_loader(index, model, train_s, world, total, start, device, weighted)
    return Run(
        world,
        device,
        model,
        opt,
        wrapped,
        loss_fn,
        dataset,
        loader,
        index,
        mix,
        listed,
        total,
        per_epoch,
        start,
        print_,
        flops,
        peak,
    )


def write_settings(out_dir: Path, model_s: ModelSettings, train_s: TrainSettings, run: Run) -> None:
    """settings.json: the recipe, the world and the speed switches that took effect."""
    speed_used = {
        "loader": train_s.loader,
        "compile": train_s.compile,
        "fused_adamw": bool(run.opt.optimizer.defaults.get("fused")),
        "channels_last": run.model.channels_last,
        "flops_per_sample": run.flops,
        "peak_tflops": run.peak,
    }
    settings = {
        "model": dataclasses.asdict(model_s),
        "train": dataclasses.asdict(train_s),
        "fingerprint": run.fingerprint,
        "world_size": run.world.size,
        "launcher": run.world.launcher,
        "speed": speed_used,
        "device": str(run.device),
        "steps": run.total,
        "samples": len(run.index),
        "sources": run.mix.summary() if run.mix else None,
        "skipped_shards": run.index.skipped,
        "threads_per_rank": torch.get_num_threads(),
    }
    (out_dir / "settings.json").write_text(json.dumps(settings, indent=1) + "\n")


def optimiser_step(wrapped, model: Model, loss_fn, opt: Optimisation, micro, train_s: TrainSettings) -> float:
    """One optimiser step on this rank's micro-batches; returns the loss."""
    if train_s.accum_steps == 1:
        images, texts = micro[0]
        loss = _step_loss(wrapped, loss_fn, images, texts, opt.dtype)
        opt.scaler.scale(loss).backward()
    else:
        loss = _accumulated_step(wrapped, loss_fn, micro, opt.dtype, opt.scaler)
    if train_s.grad_clip:
        opt.scaler.unscale_(opt.optimizer)
        torch.nn.utils.clip_grad_norm_(model.net.parameters(), train_s.grad_clip)
    opt.scaler.step(opt.optimizer)
    opt.scaler.update()
    opt.scheduler.step()
    opt.optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        logit_scale_of(model.net).clamp_(0, math.log(100))
    return float(loss.detach())


def save_checkpoint(out_dir: Path, step: int, model: Model, opt: Optimisation, fingerprint_: str, keep: int) -> None:
    state = {
        "model": unwrap(model.net).state_dict(),
        "optimizer": opt.optimizer.state_dict(),
        "scheduler": opt.scheduler.state_dict(),
        "scaler": opt.scaler.state_dict(),
        "step": step,
        "fingerprint": fingerprint_,
        "rng": checkpoints.rng_state(),
    }
    checkpoints.save(out_dir, step, state, keep)


def log_row(run: Run, train_s: TrainSettings, step: int, loss: float, data_s: float, step_s: float, replaced: int):
    return {
        "step": step,
        "epoch": round(step / max(run.per_epoch, 1), 4),
        "loss": loss,
        "lr": run.opt.scheduler.get_last_lr()[0],
        "logit_scale": float(logit_scale_of(run.model.net).detach().exp()),
        "data_s": data_s,
        "step_s": step_s,
        "replaced": replaced,
        **speed.device_rates(run.flops, train_s.batch_size, run.world.size, step_s, run.peak),
    }


def train_steps(run: Run, train_s: TrainSettings, out_dir: Path, stop_after: int | None) -> dict:
    """Take the run's steps from `run.start` (all, or `stop_after` of them), logging every
    `log_every` and checkpointing every `checkpoint_every` steps; returns what was done."""
    history = TrainingLog(out_dir / "log.csv", run.start, run.world.main)
    run.wrapped.train()
    batches = iter(run.loader)
    step, loss, t_start, replaced_total = run.start, float("nan"), time.perf_counter(), 0
    bar = tqdm(total=run.total, initial=run.start, desc="train", unit="step", disable=not run.world.main)
    while step < run.total and (stop_after is None or step - run.start < stop_after):
        t0 = time.perf_counter()
        micro, replaced = next_micro_batches(batches, train_s.accum_steps, run.model.augment, run.device, run.dataset)
        if run.model.channels_last:
            micro = [(i.contiguous(memory_format=torch.channels_last), t) for i, t in micro]
        t_data = time.perf_counter() - t0
        losses.at_step(run.loss_fn, step)
        loss = optimiser_step(run.wrapped, run.model, run.loss_fn, run.opt, micro, train_s)
        step, replaced_total, t_step = step + 1, replaced_total + replaced, time.perf_counter() - t0
        bar.update()
        if step % train_s.log_every == 0 or step == run.total:
            history.write(log_row(run, train_s, step, loss, t_data, t_step, replaced))
            bar.set_postfix(loss=f"{loss:.3f}")
        if run.world.main and (step % train_s.checkpoint_every == 0 or step == run.total):
            save_checkpoint(out_dir, step, run.model, run.opt, run.fingerprint, train_s.keep_checkpoints)
        distributed.barrier(run.world)
    bar.close()
    history.close()
    elapsed = time.perf_counter() - t_start
    return {
        "steps": step,
        "total_steps": run.total,
        "finished": step >= run.total,
        "final_loss": loss,
        "seconds": elapsed,
        "samples_per_s": (step - run.start) * train_s.batch_size / max(elapsed, 1e-9),
        "skipped_shards": run.index.skipped,
        # every rank's replacements (its loader workers' and its device decoder's), this call's steps
        "replaced_samples": distributed.total(run.world, replaced_total, run.device),
    }


def metadata_path(export_path: str | Path) -> Path:
    """results/models/<run>.pt -> <run>.sources.json: the data the model was trained on. A file
    of its own: the .pt stays a plain state dict, and <run>.json is a custom architecture's config."""
    return Path(export_path).with_suffix(".sources.json")


def log_sources(run: Run) -> None:
    """Each source's size, weight and expected share of an epoch, and the licence flag."""
    if run.mix is not None:
        for line in describe(run.mix.summary()):
            log.info("%s", line)
    note = (run.listed.manifest or {}).get("licence_note")
    if note:
        log.warning("%s", note)


def train(
    model_s: ModelSettings,
    train_s: TrainSettings,
    shards_dir: str | Path,
    out_dir: str | Path,
    export_path: str | Path | None,
    threads: int | None = None,
    stop_after: int | None = None,
    weights_cache: str | Path | None = None,
    weights: Mapping[str, float] | None = None,
) -> dict:
    """Train (or resume) one run; returns a summary. `threads`: the CPUs that the ranks started
    together on this node share (distributed.threads_per_rank). `stop_after` ends early after
    that many optimiser steps in this call (used to test resuming). Pretrained tags are read
    from `weights_cache` (remoteclip.weights.cache). `weights`: per-source sampling weights
    (runs.<run>.weights; remoteclip.train.mixing). The exported model gets its training data's
    sources, weights, licences and terms beside it (`metadata_path`)."""
    shards_dir, out_dir = Path(shards_dir), Path(out_dir)
    run = prepare(model_s, train_s, shards_dir, out_dir, threads, weights_cache, weights)
    out_dir.mkdir(parents=True, exist_ok=True)
    if run.world.main:
        write_settings(out_dir, model_s, train_s, run)
        log_sources(run)
    log.info(
        "run: rank %d of %d starts at step %d; %d samples, %d steps of %d (%d per epoch), world %d (%s), %s, "
        "autocast %s",
        *(run.world.rank, run.world.size, run.start, len(run.index), run.total, train_s.batch_size, run.per_epoch),
        *(run.world.size, run.world.launcher, run.device, run.opt.dtype),
    )
    summary = train_steps(run, train_s, out_dir, stop_after)
    if run.world.main and summary["finished"] and export_path is not None:
        export(run.model.net, export_path, model_s.arch, exclude=run.model.training_only)
        sources = licences.training_sources(run.listed.manifest, run.mix.summary() if run.mix else None)
        metadata_path(export_path).write_text(json.dumps(sources, indent=1, ensure_ascii=False) + "\n")
        (out_dir / "summary.json").write_text(json.dumps(summary | {"sources": sources}, indent=1) + "\n")
    distributed.shutdown(run.world)
    return summary
