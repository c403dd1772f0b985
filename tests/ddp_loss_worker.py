"""Started by tests/test_losses.py under torchrun with two gloo processes: for every loss of
train.loss, the gradient of the training step as the loop takes it on two ranks (each rank
its half of the batch, the loss over the gathered global batch, DDP averaging the ranks)
against one process's gradient for the whole batch. Rank 0 writes, per loss, the largest
gradient difference relative to the largest gradient, and the two losses.

    torchrun --standalone --nproc_per_node 2 tests/ddp_loss_worker.py MODELS_DIR OUT_JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import open_clip
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from remoteclip.models import create, register_model_configs
from remoteclip.train import losses
from remoteclip.train.loop import _step_loss
from remoteclip.train.settings import LOSSES, TrainSettings

OPTIONS = TrainSettings(steps=1).loss_options
ARCH = "tiny-test-ViT"


def step_gradients(name: str, images, texts, rank: int, world: int) -> tuple[float, dict[str, torch.Tensor]]:
    torch.manual_seed(1)  # the same initial weights on every rank and in the one-process step
    model, _, _ = create(ARCH, None)
    losses.prepare_model(model, name, OPTIONS)
    wrapped = DDP(model) if world > 1 else model
    loss = _step_loss(wrapped, losses.build(name, OPTIONS, rank=rank, world_size=world), images, texts, None)
    loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def main(models: str, out: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    register_model_configs(Path(models))
    torch.manual_seed(0)
    images = torch.randn(8, 3, 32, 32)
    texts = open_clip.get_tokenizer(ARCH)([f"a photo of scene {i} with {i % 3} planes" for i in range(8)])
    result = {}
    for name in LOSSES:
        full_loss, full = step_gradients(name, images, texts, 0, 1)
        mine = slice(rank * len(images) // world, (rank + 1) * len(images) // world)
        ranks_loss, ranks = step_gradients(name, images[mine], texts[mine], rank, world)
        worst = max(float((full[k] - ranks[k]).abs().max()) / (float(full[k].abs().max()) + 1e-12) for k in full)
        result[name] = {
            "relative_difference": worst,
            "same_parameters": sorted(full) == sorted(ranks),
            "loss_one_process": full_loss,
            "loss_rank0": ranks_loss,
        }
    if rank == 0:
        Path(out).write_text(json.dumps(result, indent=1))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
