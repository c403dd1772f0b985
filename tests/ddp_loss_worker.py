"""Started by tests/test_losses.py under torchrun with two gloo processes: for every loss of
train.loss, the gradient of the training step as the loop takes it on two ranks (each rank
its half of the batch, the loss over the gathered global batch, DDP averaging the ranks), with
and without two accumulation steps per rank, against one process's gradient for the whole batch. Rank 0 writes, per loss, the largest
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

from remoteclip.models import register_model_configs
from remoteclip.train.settings import LOSSES
from train_helpers import step_gradients  # this script's folder, tests/, is on its path

# float64: the equivalences are exact, so the comparison shows the algorithm, not float32's
# rounding (which alone moves Barlow Twins' near-cancelling ln_post bias gradient by 2e-5)
PRECISION = torch.float64


def relative_difference(a: dict, b: dict) -> float:
    """The largest difference of two gradients, relative to each parameter's largest gradient."""
    return max(float((a[k] - b[k]).abs().max()) / (float(a[k].abs().max()) + 1e-12) for k in a)


def main(models: str, out: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    register_model_configs(Path(models))
    torch.manual_seed(0)
    images = torch.randn(8, 3, 32, 32)
    texts = open_clip.get_tokenizer("tiny-test-ViT")([f"a photo of scene {i} with {i % 3} planes" for i in range(8)])
    result = {}
    for name in LOSSES:
        full_loss, full = step_gradients(name, images, texts, dtype=PRECISION)
        mine = slice(rank * len(images) // world, (rank + 1) * len(images) // world)
        ranks_loss, ranks = step_gradients(name, images[mine], texts[mine], rank=rank, world=world, dtype=PRECISION)
        # both at once: each rank's half in two feature-cached micro-batches
        _, ranks_accumulated = step_gradients(
            name, images[mine], texts[mine], accum=2, rank=rank, world=world, dtype=PRECISION
        )
        result[name] = {
            "relative_difference": relative_difference(full, ranks),
            "relative_difference_accumulated": relative_difference(full, ranks_accumulated),
            "same_parameters": sorted(full) == sorted(ranks) == sorted(ranks_accumulated),
            "loss_one_process": full_loss,
            "loss_rank0": ranks_loss,
        }
    if rank == 0:
        Path(out).write_text(json.dumps(result, indent=1))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
