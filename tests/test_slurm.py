"""The workflow through Snakemake's SLURM executor on a real, local one-node SLURM cluster
(tests/slurm/local_slurm.py: munged + slurmctld + slurmd on 127.0.0.1, started here and
stopped by PID afterwards, also when a test fails).

(a) the CPU stages of a tiny demo (synthesize -> RET captions -> pHash -> dedup against the
    test split -> shards), every rule a SLURM job, with profiles/slurm;
(b) training as one 2-task SLURM job (`mpi="srun"`): srun starts two torchrun agents that
    meet by c10d rendezvous and train a tiny model with gloo, world size 2. This is the
    multi-node launch of rule `train` with nodes 1 x tasks_per_node 2, since one machine
    cannot be two nodes.

Opt-in, because it changes the machine: it installs Debian's slurmctld, slurmd and munge with
apt and writes /etc/slurm/slurm.conf. Set REMOTECLIP_SLURM_TEST=1 to run it (`.ci/run` does);
otherwise it is skipped with that reason. Also skipped, with the reason, where no cluster can
run (not root, no apt-get, the daemons do not start, or an /etc/slurm/slurm.conf that is not
ours).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent / "slurm"))
from local_slurm import LocalSlurm, Unavailable  # noqa: E402
from train_helpers import tiny_model_dir  # noqa: E402
from workflow_helpers import tiny_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slurm, pytest.mark.slow]

RUN = "tiny"
# Snakemake polls the cluster first this many seconds after a submission or a finished job, then
# 10 s later each time. A job here takes 15-30 s (mostly Snakemake starting inside it, twice),
# so one poll per DAG level usually does: the run takes about DAG depth (6) x this.
FIRST_POLL = 30


OPT_IN = "REMOTECLIP_SLURM_TEST"


@pytest.fixture(scope="module")
def cluster(request):
    if os.environ.get(OPT_IN) != "1":
        pytest.skip(
            f"the local SLURM cluster test installs system packages and writes /etc/slurm: set {OPT_IN}=1 to run it"
        )
    slurm = LocalSlurm(cpus=2, min_job_age=900)  # scontrol still knows the jobs when the tests look
    request.addfinalizer(slurm.stop)  # the daemons stop also when a test (or start) fails
    try:
        slurm.start()
    except Unavailable as err:
        print(f"\nno local SLURM cluster: {err}", file=sys.stderr)
        pytest.skip(f"no local SLURM cluster: {str(err)[:600]}")
    return slurm


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("slurm-wf")
    config = tiny_config(root)
    # one retrieval source keeps the DAG (and the polls) short: synthesize -> RET captions ->
    # pHash of its train and test splits -> dedup (the test split is protected) -> shards
    config["datasets"] = {"t_rsicd": config["datasets"]["t_rsicd"]}
    config["shards"] = {"max_side": 48, "samples_per_shard": 16}
    config["dedup"] = {"workers": 1}  # one CPU per job: two jobs at once on the 2-CPU node
    config["runs"] = {
        RUN: {
            "sources": ["@RET"],
            "model": {"arch": "tiny-test-ViT", "pretrained": None},
            "train": {
                "batch_size": 8,
                "steps": 4,
                "lr": 5e-4,
                "warmup": 1,
                "workers": 0,
                "log_every": 1,
                "checkpoint_every": 2,
            },
            # two SLURM tasks on the one node, each a torchrun agent with one CPU process
            "resources": {"nodes": 1, "tasks_per_node": 2, "threads": 1, "mem_mb": 1000, "runtime": 10},
        }
    }
    tiny_model_dir(root / "config")  # config/models/tiny-test-ViT.json, found from the working directory
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def slurm_run(cluster, workdir):
    """One Snakemake run through the SLURM executor: the CPU stages, then training."""
    targets = ["results/captions/summary.json", f"results/shards/{RUN}", f"results/models/{RUN}.pt"]
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        *targets,
        "--configfile",
        str(workdir / "config.yaml"),
        "--workflow-profile",
        str(REPO / "profiles" / "slurm"),
        "--executor",
        "slurm",
        "--slurm-status-command",
        "squeue",  # no accounting here
        "--slurm-init-seconds-before-status-checks",
        str(FIRST_POLL),
        "--slurm-logdir",
        str(workdir / "slurm_logs"),
        "--slurm-keep-successful-logs",
        # fit the profile's requests to a 2-CPU node
        "--resources",
        "mem_mb=4000",
        "--max-threads",
        "2",
    ]
    env = {**cluster.env, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")}
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir, timeout=720)
    output = proc.stdout + proc.stderr
    print(f"\nsnakemake --executor slurm: {time.monotonic() - started:.0f} s", file=sys.stderr)
    if proc.returncode != 0:
        slurm_logs = "\n".join(
            f"--- {p}\n{p.read_text(errors='replace')[-2000:]}" for p in sorted((workdir / "slurm_logs").rglob("*.log"))
        )
        rule_logs = "\n".join(
            f"--- {p}\n{p.read_text(errors='replace')[-2000:]}"
            for p in sorted((workdir / "results" / "logs").rglob("*.log"))
        )
        pytest.fail(
            f"snakemake --executor slurm failed ({proc.returncode}):\n{output[-6000:]}\n"
            f"{slurm_logs[-6000:]}\n{rule_logs[-4000:]}\n{cluster.logs()}"
        )
    return output


def slurm_job_ids(output: str, rule: str) -> list[str]:
    return re.findall(rf"rule_{rule}/[^ ]*?/?(\d+)\.log\)", output)


def scontrol_job(cluster: LocalSlurm, job_id: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "show", "job", job_id], env=cluster.env, capture_output=True, text=True, timeout=20
    ).stdout
    return dict(re.findall(r"(\w[\w:/]*)=(\S*)", out))


def test_cpu_stages_run_as_slurm_jobs(cluster, workdir, slurm_run):
    output = slurm_run
    # every job went through sbatch
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", output)
    rules = {
        "synthesize",
        "ret_captions",
        "captions_summary",
        "hash_training_source",
        "hash_test_split",
        "dedup",
        "plan_shards",
        "build_shards",
        "shard_manifest",
    }
    for rule in rules:
        assert (workdir / "slurm_logs" / f"rule_{rule}").is_dir(), f"no SLURM job for rule {rule}"
    assert len(submitted) >= len(rules)
    # the outputs
    summary = json.loads((workdir / "results/captions/summary.json").read_text())
    assert set(summary["datasets"]) == {"t_rsicd"} and summary["datasets"]["t_rsicd"]["captioned"] == 12
    manifest = json.loads((workdir / f"results/shards/{RUN}/manifest.json").read_text())
    assert manifest["total"] > 0
    assert sorted((workdir / f"results/shards/{RUN}").glob("shard-*.tar"))
    assert (workdir / f"results/dedup/{RUN}/removed.tsv").is_file()
    # what sbatch was asked for: the profile's resources for a chunk (1 CPU, 4 GB, 1 h); the 12
    # captioned images are one chunk of up to 16
    (shards_job,) = slurm_job_ids(output, "build_shards")
    job = scontrol_job(cluster, shards_job)
    assert job["JobState"] == "COMPLETED", job
    assert job["TimeLimit"] == "01:00:00" and job["NumCPUs"] == "1" and job["NumTasks"] == "1", job
    assert job["MinMemoryNode"] in ("4000M", "4000"), job


def test_two_task_training_through_srun(cluster, workdir, slurm_run):
    output = slurm_run
    (train_job,) = slurm_job_ids(output, "train")
    job = scontrol_job(cluster, train_job)
    assert job["JobState"] == "COMPLETED", job
    assert job["NumTasks"] == "2" and job["NumNodes"] == "1", job
    # two torchrun agents met by rendezvous: one world of two gloo processes
    settings = json.loads((workdir / f"results/train/{RUN}/settings.json").read_text())
    assert settings["world_size"] == 2 and settings["launcher"] == "torchrun", settings
    assert settings["device"] == "cpu"
    log = (workdir / f"results/logs/train/{RUN}.log").read_text()
    assert log.count("world 2 (torchrun)") == 2, log[-3000:]
    # the exported model is a plain open_clip state dict
    import open_clip
    import torch

    from remoteclip.models import register_model_configs

    register_model_configs(workdir / "config" / "models")
    model = open_clip.create_model("tiny-test-ViT")
    state = torch.load(workdir / f"results/models/{RUN}.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    rows = (workdir / f"results/train/{RUN}/log.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3, 4]
