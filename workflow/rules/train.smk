# Continual pretraining of each run on its shards. The checkpoint folder results/train/{run}
# is deliberately not an output: Snakemake deletes outputs before a rerun, and resuming
# needs the checkpoints. Only the exported model is.


def train_resources(run):
    return {"tasks_per_node": 1, **config["runs"][run]["resources"]}


def train_tasks(run):
    """SLURM tasks of a run: nodes x tasks_per_node; more than one means an srun launch."""
    res = train_resources(run)
    return res["nodes"] * res["tasks_per_node"]


def train_cpus_per_task(run):
    res = train_resources(run)
    if res["gpus"]:
        return res["cpus_per_gpu"] * res["gpus"] // res["tasks_per_node"]
    return res["threads"] or 1


for _run in RUNS:
    _res = train_resources(_run)
    if _res["gpus"] % _res["tasks_per_node"]:
        raise WorkflowError(f"runs.{_run}.resources: gpus ({_res['gpus']}) must be a multiple of tasks_per_node "
                            f"({_res['tasks_per_node']}): the tasks on a node share its GPUs evenly")


def train_launcher(run):
    """plain python for 0/1 GPU, torchrun with one process per GPU on a node, and for several
    SLURM tasks (nodes x tasks_per_node > 1) one srun step whose tasks each run torchrun with
    their share of the node's GPUs, meeting by c10d rendezvous on the allocation's first node
    (see profiles/slurm/README.md). Only the single-task forms run outside SLURM."""
    res = train_resources(run)
    tasks = train_tasks(run)
    if tasks > 1:
        gpus_per_task = res["gpus"] // res["tasks_per_node"]
        # Snakemake's jobstep executor strips SLURM_* (all but SLURM_JOB_ID) from the rule's
        # environment, and srun would otherwise fall back to 1 task with 1 CPU and the default
        # memory: every count is explicit (--mem=0: all of the job's memory on each node), and
        # the node list comes from squeue when SLURM_JOB_NODELIST is gone. These $-expressions
        # reach the shell as they are (a params value is not formatted again).
        head = '$(scontrol show hostnames "${SLURM_JOB_NODELIST:-$(squeue -h -j $SLURM_JOB_ID -o %N)}" | head -n 1)'
        port = "$((29500 + SLURM_JOB_ID % 10000))"
        gpu_flag = f"--gpus-per-task={gpus_per_task} " if gpus_per_task else ""
        return (f"srun --ntasks={tasks} --nodes={res['nodes']} --ntasks-per-node={res['tasks_per_node']} "
                f"--cpus-per-task={train_cpus_per_task(run)} {gpu_flag}--mem=0 --kill-on-bad-exit=1 "
                f"{PYTHON} -m torch.distributed.run --nnodes={tasks} --nproc_per_node={max(gpus_per_task, 1)} "
                f"--rdzv_backend=c10d --rdzv_endpoint={head}:{port} --rdzv_id=$SLURM_JOB_ID")
    if res["gpus"] > 1:
        return f"{PYTHON} -m torch.distributed.run --standalone --nproc_per_node={res['gpus']}"
    return PYTHON


def train_threads(run):
    res = train_resources(run)
    if train_tasks(run) > 1:  # torch threads of each process
        return res["cpus_per_gpu"] if res["gpus"] else res["threads"] or 1
    return res["threads"] or (res["cpus_per_gpu"] * max(res["gpus"], 1) if res["gpus"] else workflow.cores)


def srun_only(run, value):
    """A resource only a multi-task (srun) run has; None leaves it out of the job."""
    return value if train_tasks(run) > 1 else None


def single_task_only(run, value):
    return None if train_tasks(run) > 1 else value


def train_gres(run):
    gpus = train_resources(run)["gpus"]
    return srun_only(run, f"gpu:{gpus}" if gpus else None)


rule train:
    input:
        shards="results/shards/{run}",
    output:
        model="results/models/{run}.pt",
    params:
        settings=lambda w: json.dumps({k: config["runs"][w.run][k] for k in ("model", "train")}),
        launcher=lambda w: train_launcher(w.run),
        out_dir="results/train/{run}",
    threads: lambda w: train_threads(w.run)
    # One task (a node's GPUs via --gpus, as before); several tasks (snakemake-executor-plugin-slurm
    # 2.x): `mpi` makes the plugin run this command in the batch step instead of wrapping it in
    # `srun -n1`, tasks/nodes give --ntasks/--nodes, GPUs per node as `gres` (--gpus would be a
    # total SLURM may spread unevenly), tasks_per_gpu=0 keeps `tasks` from becoming
    # --ntasks-per-gpu (and, in plugin 2.6-2.7.0, a GPU job without it from getting
    # --ntasks-per-gpu=1), and CPUs per task. See profiles/slurm/README.md.
    resources:
        gpu=lambda w: single_task_only(w.run, train_resources(w.run)["gpus"]),
        gres=lambda w: train_gres(w.run),
        tasks_per_gpu=lambda w: 0 if train_resources(w.run)["gpus"] else None,
        nodes=lambda w: train_resources(w.run)["nodes"],
        tasks=lambda w: srun_only(w.run, train_tasks(w.run)),
        mpi=lambda w: srun_only(w.run, "srun"),
        cpus_per_task=lambda w: srun_only(w.run, train_cpus_per_task(w.run)),
        cpus_per_gpu=lambda w: single_task_only(w.run, train_resources(w.run)["cpus_per_gpu"]),
        mem_mb=lambda w: train_resources(w.run)["mem_mb"],
        runtime=lambda w: train_resources(w.run)["runtime"],
    conda:
        "../../envs/train.yaml"
    log:
        "results/logs/train/{run}.log",
    shell:
        "{params.launcher} -m remoteclip.train --shards {input.shards} --out-dir {params.out_dir} "
        "--export {output.model} --settings {params.settings:q} --threads {threads} > {log} 2>&1"
