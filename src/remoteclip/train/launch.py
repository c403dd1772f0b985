"""How the `train` rule starts a run from its `resources` (no torch: Snakemake reads this while
it builds the DAG): plain python for 0/1 GPU, torchrun with one process per GPU on a node, and
for several SLURM tasks (nodes x tasks_per_node > 1) one srun step whose tasks each run
torchrun with their share of the node's GPUs, meeting by c10d rendezvous on the allocation's
first node (see profiles/slurm/README.md). Only the single-task forms run outside SLURM.
"""

from __future__ import annotations

from typing import Any


def tasks(res: dict[str, Any]) -> int:
    """SLURM tasks of a run: nodes x tasks_per_node; more than one means an srun launch."""
    return res["nodes"] * res["tasks_per_node"]


def cpus_per_task(res: dict[str, Any]) -> int:
    if res["gpus"]:
        return res["cpus_per_gpu"] * res["gpus"] // res["tasks_per_node"]
    return res["threads"] or 1


def resource_errors(run: str, res: dict[str, Any]) -> list[str]:
    if res["gpus"] % res["tasks_per_node"]:
        return [
            f"runs.{run}.resources: gpus ({res['gpus']}) must be a multiple of tasks_per_node "
            f"({res['tasks_per_node']}): the tasks on a node share its GPUs evenly"
        ]
    return []


def launcher(res: dict[str, Any], python: str) -> str:
    """The command that starts `-m remoteclip.train` for these resources."""
    n_tasks = tasks(res)
    if n_tasks > 1:
        gpus_per_task = res["gpus"] // res["tasks_per_node"]
        # Snakemake's jobstep executor strips SLURM_* (all but SLURM_JOB_ID) from the rule's
        # environment, and srun would otherwise fall back to 1 task with 1 CPU and the default
        # memory: every count is explicit (--mem=0: all of the job's memory on each node), and
        # the node list comes from squeue when SLURM_JOB_NODELIST is gone. These $-expressions
        # reach the shell as they are (a params value is not formatted again).
        head = '$(scontrol show hostnames "${SLURM_JOB_NODELIST:-$(squeue -h -j $SLURM_JOB_ID -o %N)}" | head -n 1)'
        port = "$((29500 + SLURM_JOB_ID % 10000))"
        gpu_flag = f"--gpus-per-task={gpus_per_task} " if gpus_per_task else ""
        return (
            f"srun --ntasks={n_tasks} --nodes={res['nodes']} --ntasks-per-node={res['tasks_per_node']} "
            f"--cpus-per-task={cpus_per_task(res)} {gpu_flag}--mem=0 --kill-on-bad-exit=1 "
            f"{python} -m torch.distributed.run --nnodes={n_tasks} --nproc_per_node={max(gpus_per_task, 1)} "
            f"--rdzv_backend=c10d --rdzv_endpoint={head}:{port} --rdzv_id=$SLURM_JOB_ID"
        )
    if res["gpus"] > 1:
        return f"{python} -m torch.distributed.run --standalone --nproc_per_node={res['gpus']}"
    return python


def threads(res: dict[str, Any], cores: int) -> int:
    """--threads: the CPUs that the processes of one launcher share (each rank takes its share,
    remoteclip.train.distributed.threads_per_rank): with several SLURM tasks those of one task,
    whose torchrun starts the task's GPUs' processes; otherwise the job's (`cores`: all of
    Snakemake's, for a CPU run without `threads`)."""
    if tasks(res) > 1:
        return cpus_per_task(res)
    return res["threads"] or (res["cpus_per_gpu"] * max(res["gpus"], 1) if res["gpus"] else cores)


def srun_only(res: dict[str, Any], value):
    """A resource only a multi-task (srun) run has; None leaves it out of the job."""
    return value if tasks(res) > 1 else None


def single_task_only(res: dict[str, Any], value):
    return None if tasks(res) > 1 else value


def gres(res: dict[str, Any]) -> str | None:
    return srun_only(res, f"gpu:{res['gpus']}" if res["gpus"] else None)
