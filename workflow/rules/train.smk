# Continual pretraining of each run on its shards. The checkpoint folder results/train/{run}
# is deliberately not an output: Snakemake deletes outputs before a rerun, and resuming
# needs the checkpoints. Only the exported model is.


def train_launcher(run):
    """plain python for 0/1 GPU, torchrun with one process per GPU on a node, and for
    several nodes one srun task per node each running torchrun (see profiles/slurm)."""
    res = config["runs"][run]["resources"]
    if res["nodes"] > 1:
        return (f"srun --ntasks={res['nodes']} --ntasks-per-node=1 {PYTHON} -m torch.distributed.run "
                f"--nnodes={res['nodes']} --nproc_per_node={max(res['gpus'], 1)} --rdzv_backend=c10d "
                "--rdzv_endpoint=$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n 1):29500 "
                "--rdzv_id=$SLURM_JOB_ID")
    if res["gpus"] > 1:
        return f"{PYTHON} -m torch.distributed.run --standalone --nproc_per_node={res['gpus']}"
    return PYTHON


def train_threads(run):
    res = config["runs"][run]["resources"]
    return res["threads"] or (res["cpus_per_gpu"] * max(res["gpus"], 1) if res["gpus"] else workflow.cores)


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
    resources:
        gpu=lambda w: config["runs"][w.run]["resources"]["gpus"],
        nodes=lambda w: config["runs"][w.run]["resources"]["nodes"],
        cpus_per_gpu=lambda w: config["runs"][w.run]["resources"]["cpus_per_gpu"],
        mem_mb=lambda w: config["runs"][w.run]["resources"]["mem_mb"],
        runtime=lambda w: config["runs"][w.run]["resources"]["runtime"],
    log:
        "results/logs/train/{run}.log",
    shell:
        "{params.launcher} -m remoteclip.train --shards {input.shards} --out-dir {params.out_dir} "
        "--export {output.model} --settings {params.settings:q} --threads {threads} > {log} 2>&1"
