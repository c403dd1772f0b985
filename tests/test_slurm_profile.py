"""profiles/slurm on the paper configuration, without a cluster: a dry run, and the sbatch
line the SLURM executor plugin would build for each job, computed by the plugin's own
functions (snakemake_executor_plugin_slurm.submit_string / utils, and the jobstep plugin's
srun settings) from the resources the dry run reports.

The paper's data is absent, which a dry run does not mind.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"
PAPER = REPO / "config" / "paper.yaml"

submit_string = pytest.importorskip("snakemake_executor_plugin_slurm.submit_string")
slurm_utils = pytest.importorskip("snakemake_executor_plugin_slurm.utils")
jobstep = pytest.importorskip("snakemake_executor_plugin_slurm_jobstep")


class Resources(dict):
    """What the plugin reads from job.resources: .get() and attribute access."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _value(text: str):
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def parse_dry_run(output: str) -> list[dict]:
    """Jobs (rules and checkpoints) of `snakemake -n` output: rule, wildcards, threads, resources, shell command."""
    jobs = []
    for block in re.finditer(r"^(?:rule|checkpoint) (\S+):\n((?:    .*\n)+)(?:Shell command: (.*)\n)?", output, re.M):
        fields = dict(re.findall(r"^    (\w+): (.*)$", block.group(2), re.M))
        resources = {}
        for item in fields.get("resources", "").split(", "):
            key, _, value = item.partition("=")
            if key and "<TBD>" not in value:
                resources[key] = _value(value)
        jobs.append(
            {
                "rule": block.group(1),
                "wildcards": fields.get("wildcards", ""),
                "threads": int(fields.get("threads", 1)),
                "resources": resources,
                "shell": block.group(3),
            }
        )
    return jobs


def sbatch_line(job: dict, requeue: bool) -> str:
    """The plugin's sbatch call for a job, as snakemake_executor_plugin_slurm.Executor.run_job builds it."""
    fake = SimpleNamespace(threads=job["threads"], resources=Resources(job["resources"]))
    params = {
        "run_uuid": "RUN",
        "slurm_logfile": "LOG",
        "comment_str": f"rule_{job['rule']}",
        "account": "",
        "partition": "",
        "workdir": "",
    }
    settings = SimpleNamespace(requeue=requeue, no_requeue=False, qos=None, reservation=None)
    return submit_string.get_submit_command(fake, params, settings=settings) + slurm_utils.set_gres_string(fake)


def jobstep_line(job: dict) -> str | None:
    """The srun that the jobstep plugin wraps a non-MPI job in (None: MPI jobs run their own)."""
    if "mpi" in job["resources"]:
        return None
    fake = SimpleNamespace(threads=job["threads"], resources=Resources(job["resources"]))
    gpu = bool(jobstep.get_gpu_setting(fake))
    return (
        f"srun -n1 --cpu-bind=q {jobstep.get_cpu_setting(fake, gpu)} {jobstep.get_gpu_setting(fake)} "
        f"{jobstep.get_node_setting(fake)}"
    )


def flags(line: str) -> dict[str, str]:
    return {m.group(1): m.group(2) or "" for m in re.finditer(r"(?<!\S)(--[\w-]+|-t)(?:[= ](?!-)('[^']*'|\S+))?", line)}


def dry_run(workdir: Path, config: Path, *targets: str) -> str:
    (workdir / "config").mkdir(exist_ok=True)
    templates = workdir / "config" / "b2c_templates.yaml"
    if not templates.exists():
        templates.symlink_to(REPO / "config" / "b2c_templates.yaml")
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "-n",
        *targets,
        "--workflow-profile",
        str(PROFILE),
        "--configfile",
        str(config),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=workdir)
    assert proc.returncode == 0, f"dry run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def profile():
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


@pytest.fixture(scope="module")
def paper_output(tmp_path_factory):
    output = dry_run(tmp_path_factory.mktemp("paper"), PAPER)
    assert "This was a dry-run" in output
    return output


@pytest.fixture(scope="module")
def paper_jobs(paper_output):
    jobs = parse_dry_run(paper_output)
    assert len(jobs) > 100, paper_output[-2000:]
    return jobs


LOCAL_RULES = """
import sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings
with SnakemakeApi(OutputSettings()) as api:
    workflow = api.workflow(resource_settings=ResourceSettings(cores=1), config_settings=ConfigSettings(
        configfiles=[Path(sys.argv[2])]), snakefile=Path(sys.argv[1]), workdir=Path.cwd())._workflow
    print(" ".join(sorted(workflow._localrules)))  # what `localrule: True` declares
"""


def local_rules(workdir: Path, config: Path) -> set[str]:
    """The rules the workflow declares local (run where Snakemake runs: the login node)."""
    (workdir / "config").mkdir(exist_ok=True)
    templates = workdir / "config" / "b2c_templates.yaml"
    if not templates.exists():
        templates.symlink_to(REPO / "config" / "b2c_templates.yaml")
    proc = subprocess.run(
        [sys.executable, "-c", LOCAL_RULES, str(REPO / "Snakefile"), str(config)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return set(proc.stdout.split())


def test_only_fetching_runs_on_the_login_node(tmp_path, paper_jobs):
    """Downloads need the internet (login node); checksums and unpacking hundreds of GB are jobs."""
    local = local_rules(tmp_path, PAPER)
    assert {"fetch_archive", "fetch_dataset", "fetch_weights"} <= local
    assert not {"verify_archive", "install_archive", "train", "features"} & local
    for job in of_rule(paper_jobs, "verify_archive") + of_rule(paper_jobs, "install_archive"):
        f = flags(sbatch_line(job, requeue=True))
        assert f["--mem"] == "4000" and f["-t"] == "240" and "--gpus" not in f, f


def test_unpacking_on_the_login_node_is_a_switch(tmp_path):
    config = yaml.safe_load(PAPER.read_text())
    config["download"] = {**config.get("download", {}), "unpack": "local"}
    path = tmp_path / "local-unpack.yaml"
    path.write_text(yaml.safe_dump(config))
    assert {"fetch_archive", "verify_archive", "install_archive"} <= local_rules(tmp_path, path)


def of_rule(jobs, rule):
    found = [j for j in jobs if j["rule"] == rule]
    assert found, f"no {rule} job in the dry run"
    return found


def test_profile_selects_slurm_with_requeue_retries_and_documents_squeue(profile):
    assert profile["executor"] == "slurm"
    assert profile["jobs"] >= 1 and profile["retries"] >= 1 and profile["slurm-requeue"] is True
    text = (PROFILE / "config.yaml").read_text()
    readme = (PROFILE / "README.md").read_text()
    assert "slurm-status-command: squeue" in text and "--slurm-status-command squeue" in readme
    # the GPU traps: the resource is `gpu`, and no rule asks for `gpus` or `tasks` next to it
    for rule, res in profile["set-resources"].items():
        assert "gpus" not in res, f"{rule}: the plugin's resource is `gpu`, not `gpus`"
        if "gpu" in res:
            assert "tasks" not in res, f"{rule}: `tasks` with `gpu` becomes --ntasks-per-gpu"


def test_profile_names_only_rules_that_exist(profile, tmp_path):
    rules = set(dry_run(tmp_path, PAPER, "--list-rules").split())
    assert {"train", "features", "build_shards"} <= rules
    unknown = (set(profile["set-resources"]) | set(profile.get("set-threads", {}))) - rules
    assert not unknown, f"profile names rules the paper workflow does not have: {sorted(unknown)}"


def test_train_jobs_ask_for_one_node_with_four_gpus(paper_jobs, profile):
    runs = yaml.safe_load(PAPER.read_text())["runs"]
    train = of_rule(paper_jobs, "train")
    assert len(train) == len(runs)
    for job in train:
        want = runs[job["wildcards"].removeprefix("run=")]["resources"]
        line = sbatch_line(job, requeue=profile["slurm-requeue"])
        f = flags(line)
        assert f["--gpus"] == str(want["gpus"]) == "4", line
        assert f["--cpus-per-gpu"] == str(want["cpus_per_gpu"]), line
        assert f["--mem"] == str(want["mem_mb"]) and f["-t"] == str(want["runtime"]), line
        assert f["--nodes"] == "1" and "--requeue" in f, line
        assert "--ntasks-per-gpu" not in f and "--ntasks" not in f and "--gres" not in f, line
        # one srun task holding all four GPUs, running torchrun with one process per GPU
        assert jobstep_line(job).startswith("srun -n1 ")
        step = flags(jobstep_line(job))
        assert step["--gpus"] == "4" and step["--cpus-per-gpu"] == "8" and step["--nodes"] == "1"
        assert "--standalone --nproc_per_node=4" in job["shell"]
        assert " --threads 32 " in job["shell"]  # the job's CPUs, which its 4 ranks share


def test_evaluation_features_on_one_gpu_and_tasks_on_cpu(paper_jobs, profile):
    for job in of_rule(paper_jobs, "features"):
        f = flags(sbatch_line(job, requeue=True))
        assert f["--gpus"] == "1" and f["--cpus-per-gpu"] == "8" and f["--mem"] == "32000" and f["-t"] == "240"
        assert "--ntasks-per-gpu" not in f
    for rule in ("evaluate_cls", "evaluate_ret", "evaluate_count"):
        for job in of_rule(paper_jobs, rule):
            f = flags(sbatch_line(job, requeue=True))
            assert "--gpus" not in f and f["--ntasks"] == "1"
            assert f["--mem"] == str(profile["set-resources"][rule]["mem_mb"])


def test_cpu_stages_get_the_profile_resources(paper_jobs, profile):
    for rule in ("parse", "b2c", "ret_captions", "hash_training_source", "hash_test_split", "dedup", "plan_shards"):
        want = profile["set-resources"][rule]
        for job in of_rule(paper_jobs, rule):
            f = flags(sbatch_line(job, requeue=True))
            assert f["--mem"] == str(want["mem_mb"]) and f["-t"] == str(want["runtime"]), (rule, f)
            assert f["--ntasks"] == "1" and "--gpus" not in f
    # build_shards jobs (one per chunk) exist only once the plan_shards checkpoint has run, so a
    # dry run cannot list them: their resources are the profile's, one CPU each
    assert {"mem_mb", "runtime"} <= set(profile["set-resources"]["build_shards"])
    assert "build_shards" not in profile.get("set-threads", {})
    for job in of_rule(paper_jobs, "hash_training_source"):  # dedup.workers: 8 in the paper config
        assert flags(sbatch_line(job, requeue=True))["--cpus-per-task"] == "8"
    for job in paper_jobs:
        assert "--ntasks-per-gpu" not in sbatch_line(job, requeue=True), job


def test_multi_node_training_is_one_torchrun_per_node(tmp_path):
    """A paper run on 2 nodes x 4 GPUs: 2 tasks, one per node, each torchrun with 4 processes."""
    config = yaml.safe_load(PAPER.read_text())
    config["runs"] = {
        "remoteclip_vitl14": {
            **config["runs"]["remoteclip_vitl14"],
            "resources": {"gpus": 4, "nodes": 2, "cpus_per_gpu": 8, "mem_mb": 128000, "runtime": 4320},
        }
    }
    config["evaluation"]["models"] = {}
    path = tmp_path / "multinode.yaml"
    path.write_text(yaml.safe_dump(config))
    (job,) = of_rule(parse_dry_run(dry_run(tmp_path, path, "results/models/remoteclip_vitl14.pt")), "train")
    line = sbatch_line(job, requeue=True)
    f = flags(line)
    assert f["--nodes"] == "2" and f["--ntasks"] == "2", line
    assert f["--gres"] == "gpu:4" and "--gpus" not in f, line  # 4 GPUs on each node
    assert f["--cpus-per-task"] == "32" and "--cpus-per-gpu" not in f, line
    assert "--ntasks-per-gpu" not in f and f["--mem"] == "128000", line
    assert job["resources"]["mpi"] == "srun" and jobstep_line(job) is None  # the rule runs its own srun
    shell = job["shell"]
    # offline: a compute node reads the weights cache only (srun passes the environment on)
    assert shell.startswith(
        "HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 srun --ntasks=2 --nodes=2 --ntasks-per-node=1 --cpus-per-task=32 --gpus-per-task=4 "
        "--mem=0 "
    )
    assert "-m torch.distributed.run --nnodes=2 --nproc_per_node=4 --rdzv_backend=c10d" in shell
    assert " --threads 32 " in shell  # the task's CPUs, which its 4 ranks share: 8 threads each
    # the head node and port come from the allocation at run time, unformatted by Snakemake
    assert (
        '--rdzv_endpoint=$(scontrol show hostnames "${SLURM_JOB_NODELIST:-$(squeue -h -j $SLURM_JOB_ID '
        '-o %N)}" | head -n 1):$((29500 + SLURM_JOB_ID % 10000)) --rdzv_id=$SLURM_JOB_ID' in shell
    )


def test_gpus_must_divide_among_tasks(tmp_path):
    config = yaml.safe_load(PAPER.read_text())
    config["runs"] = {
        "odd": {**config["runs"]["remoteclip_rn50"], "resources": {"gpus": 3, "nodes": 1, "tasks_per_node": 2}}
    }
    config["evaluation"]["models"] = {}
    path = tmp_path / "odd.yaml"
    path.write_text(yaml.safe_dump(config))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "b2c_templates.yaml").symlink_to(REPO / "config" / "b2c_templates.yaml")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(tmp_path),
            "-n",
            "--configfile",
            str(path),
            "--cores",
            "1",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "runs.odd.resources: gpus (3) must be a multiple of tasks_per_node (2)" in proc.stdout + proc.stderr


# ------------------------------ config/corpora.yaml: the paper's sources + the web corpora (issue 25)

CORPORA = REPO / "config" / "corpora.yaml"
WEB = ("RS5M", "SkyScript", "RSTeller", "GAIA", "Git-10M")


@pytest.mark.slow  # one Snakemake start over the catalogue, ~1,500 jobs: ~20 s
def test_the_corpora_config_dry_runs_its_whole_dag_with_the_profile(tmp_path, profile):
    config = yaml.safe_load(CORPORA.read_text())
    jobs = parse_dry_run(dry_run(tmp_path, CORPORA))

    def datasets_of(rule):
        return sorted(
            re.search(r"(?:dataset|benchmark)=([^,\s]+)", j["wildcards"]).group(1) for j in of_rule(jobs, rule)
        )

    # every corpus is captioned, hashed and planned into shards once, however many runs use it
    for rule in ("ret_captions", "hash_training_source", "plan_shards"):
        assert {d: datasets_of(rule).count(d) for d in WEB} == dict.fromkeys(WEB, 1), rule
    # ... and is a training source only: no box stages, no evaluation split, no protected test hashes
    for rule in ("parse", "b2c", "eval_split", "hash_test_split"):
        assert not set(WEB) & set(datasets_of(rule)), rule
    assert not any(any(f"benchmark={w}" in j["wildcards"] for w in WEB) for j in of_rule(jobs, "features"))
    # one archive job per release shard: RSTeller's 240 tars and RS5M's 64 training tars
    fetched = datasets_of("fetch_archive")
    assert fetched.count("RSTeller") == 240 and fetched.count("RS5M") == 64 and fetched.count("SkyScript") == 7
    # a dedup audit, a shard manifest and a training job per run
    for rule in ("dedup", "shard_manifest", "train"):
        assert sorted(re.search(r"run=(\S+)", j["wildcards"]).group(1) for j in of_rule(jobs, rule)) == sorted(
            config["runs"]
        ), rule
    # the data stages of a web corpus get the profile's resources, its hash jobs dedup.workers threads
    for rule in ("ret_captions", "hash_training_source"):
        want = profile["set-resources"][rule]
        for job in of_rule(jobs, rule):
            f = flags(sbatch_line(job, requeue=True))
            assert f["--mem"] == str(want["mem_mb"]) and f["-t"] == str(want["runtime"]), (rule, f)
    for job in of_rule(jobs, "hash_training_source"):
        assert flags(sbatch_line(job, requeue=True))["--cpus-per-task"] == str(config["dedup"]["workers"])
