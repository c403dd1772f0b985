# Continual pretraining of each run on its shards. The checkpoint folder results/train/{run}
# is deliberately not an output: Snakemake deletes outputs before a rerun, and resuming
# needs the checkpoints. Only the exported model is.


rule train:
    input:
        shards="results/shards/{run}",
        weights=lambda w: weight_manifests(run_weight_sources(config, w.run)),
    output:
        model="results/models/{run}.pt",
        # the training data's sources, weights, licences and terms (remoteclip.train.loop.metadata_path)
        sources="results/models/{run}.sources.json",
    log:
        "results/logs/train/{run}.log",
    conda:
        "../../envs/train.yaml"
    threads: by_run_resources(lambda r: launch.threads(r, workflow.cores))
    # One task (a node's GPUs via --gpus, as before); several tasks (snakemake-executor-plugin-slurm
    # 2.x): `mpi` makes the plugin run this command in the batch step instead of wrapping it in
    # `srun -n1`, tasks/nodes give --ntasks/--nodes, GPUs per node as `gres` (--gpus would be a
    # total SLURM may spread unevenly), tasks_per_gpu=0 keeps `tasks` from becoming
    # --ntasks-per-gpu (and, in plugin 2.6-2.7.0, a GPU job without it from getting
    # --ntasks-per-gpu=1), and CPUs per task. See profiles/slurm/README.md.
    resources:
        gpu=by_run_resources(lambda r: launch.single_task_only(r, r["gpus"])),
        gres=by_run_resources(launch.gres),
        tasks_per_gpu=by_run_resources(lambda r: 0 if r["gpus"] else None),
        nodes=by_run_resources(lambda r: r["nodes"]),
        tasks=by_run_resources(lambda r: launch.srun_only(r, launch.tasks(r))),
        mpi=by_run_resources(lambda r: launch.srun_only(r, "srun")),
        cpus_per_task=by_run_resources(lambda r: launch.srun_only(r, launch.cpus_per_task(r))),
        cpus_per_gpu=by_run_resources(lambda r: launch.single_task_only(r, r["cpus_per_gpu"])),
        mem_mb=by_run_resources(lambda r: r["mem_mb"]),
        runtime=by_run_resources(lambda r: r["runtime"]),
    params:
        settings=lambda w: json.dumps(train_settings(w.run)),
        launcher=by_run_resources(lambda r: launch.launcher(r, PYTHON)),
        out_dir="results/train/{run}",
        weights_cache=WEIGHTS,
    # compute nodes may have no internet: the weights come from the cache, offline
    shell:
        "HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 {params.launcher} -m remoteclip.train --shards {input.shards} "
        "--out-dir {params.out_dir} --export {output.model} --settings {params.settings:q} --threads {threads} "
        "--weights-cache {params.weights_cache:q} > {log} 2>&1"
