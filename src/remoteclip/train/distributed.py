"""Process-group set-up for the three launch modes:

- one process: plain `python -m remoteclip.train ...`;
- N processes on a node: `torchrun --nproc_per_node N ...` (RANK, WORLD_SIZE, LOCAL_RANK set);
- SLURM across nodes: `srun` tasks (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID), with
  MASTER_ADDR taken from the job's first host and MASTER_PORT from the job id, unless set.
  One torchrun per node inside SLURM also works: torchrun's variables win.

nccl on CUDA, gloo on CPU. The ranks on a node share its CPUs: see `threads_per_rank`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclasses.dataclass
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1
    launcher: str = "single"
    local_size: int = 1  # ranks started together on this node (this torchrun's, or SLURM's tasks there)

    @property
    def main(self) -> bool:
        return self.rank == 0


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list ("gpu[03-05,07],cpu1" -> "gpu03"), without scontrol
    where it can be parsed; `scontrol show hostnames` otherwise."""
    head = re.match(r"([^,\[]+)(\[([^\]]+)\])?", nodelist)
    if head and head.group(3) is None:
        return head.group(1)
    if head:
        first = head.group(3).split(",")[0].split("-")[0]
        return head.group(1) + first
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def tasks_on_node(tasks_per_node: str, node: int) -> int:
    """A node's entry in SLURM's compressed task counts ("2(x3),1": 2 on nodes 0-2, 1 on node 3)."""
    counts = []
    for part in tasks_per_node.split(","):
        match = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if match is None:
            raise ValueError(f"task counts {tasks_per_node!r}: {part!r} is not N or N(xM) (SLURM_TASKS_PER_NODE)")
        count, repeat = match.groups()
        counts += [int(count)] * int(repeat or 1)
    return counts[min(node, len(counts) - 1)]


def threads_per_rank(node_cpus: int | None, local_ranks: int | None) -> int | None:
    """torch threads for one rank: the CPUs that the ranks started together on this node share
    (a torchrun's processes, or SLURM's tasks on the node), split evenly, at least 1, so that N
    ranks do not each run a thread per CPU. None when no CPU count is given (torch's default)."""
    if not node_cpus:
        return None
    return max(1, node_cpus // max(1, local_ranks or 1))


def detect() -> World:
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return World(
            int(env["RANK"]),
            int(env.get("LOCAL_RANK", 0)),
            int(env["WORLD_SIZE"]),
            "torchrun",
            int(env.get("LOCAL_WORLD_SIZE", 1)),
        )
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST", "")
        env.setdefault("MASTER_ADDR", first_host(nodelist) if nodelist else "127.0.0.1")
        env.setdefault("MASTER_PORT", str(20000 + int(env.get("SLURM_JOB_ID", "0")) % 20000))
        local = tasks_on_node(
            env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE") or "1",
            int(env.get("SLURM_NODEID", 0)),
        )
        return World(
            int(env["SLURM_PROCID"]), int(env.get("SLURM_LOCALID", 0)), int(env["SLURM_NTASKS"]), "slurm", local
        )
    return World()


def init(world: World, device: torch.device) -> None:
    if world.size == 1:
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(
        backend, init_method="env://", rank=world.rank, world_size=world.size, timeout=timedelta(minutes=30)
    )


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def from_main(world: World, value):
    """Rank 0's `value` (any picklable object) on every rank; the others wait until rank 0 sends it."""
    if world.size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def total(world: World, count: int, device: torch.device) -> int:
    """`count` summed over every rank (on every rank; `device`: this rank's, as its backend needs)."""
    if world.size == 1:
        return count
    box = torch.tensor([count], dtype=torch.long, device=device)
    dist.all_reduce(box)
    return int(box.item())


def shutdown(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
