# Configuration, dataset lookup and target lists shared by every rule file.

import dataclasses
import json
import re
import sys

from snakemake.exceptions import WorkflowError

from remoteclip.config import (
    ConfigError,
    copy_sources,
    dataset_specs,
    evaluation_benchmarks,
    protected_testsets,
    resolve_catalogue,
    resolve_data_paths,
    resolve_path,
    run_sources,
    validate,
)
from remoteclip.evaluate.protocols import zoo_published as published_beside_ours
from remoteclip.licences import source_licences
from remoteclip.evaluate.registry import TASKS_BY_GROUP
from remoteclip.evaluate.registry import image_sets, image_spec, leaderboard_models, models_with_own_images
from remoteclip.evaluate.registry import resolve as resolve_eval_model
from remoteclip.report import OUTPUTS as REPORT_OUTPUTS
from remoteclip.report import describe_models, paper_models, start_key
from remoteclip.shards import ShardSettings, settings_key
from remoteclip.shards.plan import chunk_files, source_folder
from remoteclip.train import launch
from remoteclip.weights.cache import eval_sources, manifest_path
from remoteclip.weights.cache import run_sources as run_weight_sources

try:
    validate(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
    # {dataset: catalogue entry} for datasets that say `catalogue:`; their group, format and
    # options are filled in here, before anything below looks at them
    CATALOGUE = resolve_catalogue(config, workflow.basedir)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
resolve_data_paths(config)  # every dataset's root and the weights cache, under data.root by default

DATA = config["data"]["root"]
WEIGHTS = config["data"]["weights"]
DATASETS = dataset_specs(config)

# the interpreter that runs Snakemake runs the stages, unless a conda env provides its own
PYTHON = (
    "python"
    if workflow.deployment_settings and "conda" in str(workflow.deployment_settings.deployment_method).lower()
    else sys.executable
)


def names_where(predicate):
    return sorted(n for n, s in DATASETS.items() if predicate(s))


def wildcard_regex(names):
    """A wildcard constraint matching exactly these dataset names (nothing when empty)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


SYNTHETIC = names_where(lambda s: s.synthetic is not None)
RET = names_where(lambda s: s.group == "RET")
# web corpora (RS5M, RSTeller, Git-10M, ...): captions read as their release gives them, like RET,
# images read in place from their tars or Parquet files; training sources only, never benchmarks
WEB = names_where(lambda s: s.group == "WEB")
OWN_CAPTIONS = RET + WEB  # read by a caption format (rule ret_captions)
BOXED = names_where(lambda s: s.group in ("DET", "SEG"))
CAPTIONED = RET + WEB + BOXED


def weight_manifests(sources):
    """The fetch_weights outputs a job waits for (remoteclip.weights.cache)."""
    return [str(manifest_path(WEIGHTS, s)) for s in sources]


def marker(dataset):
    """The file that says a dataset's raw files are complete (downloaded, verified or rendered);
    it sits in the data folder even when the dataset's own files lie elsewhere (`root:`)."""
    return f"{DATA}/raw/{dataset}/.verified"


def dataset_params(wildcards):
    return config["datasets"][wildcards.dataset]


RUNS = sorted(config["runs"])


# a target naming an unknown run or dataset reads "no rule to produce ...", not a KeyError in
# an input function; the model and benchmark wildcards are constrained in evaluate.smk
wildcard_constraints:
    run=wildcard_regex(RUNS),
    dataset=wildcard_regex(sorted(DATASETS)),


def sources_of(run):
    return run_sources(config, run)


def run_licences(run):
    """{source: {"licence", "terms"}} of a run's sources (remoteclip.licences)."""
    return source_licences(config["datasets"], CATALOGUE, sources_of(run))


def testsets():
    return protected_testsets(config)


def all_targets():
    targets = ["results/captions/summary.json"]
    targets += expand("results/models/{run}.pt", run=RUNS)
    if config["evaluation"]["models"]:
        targets.append("results/eval/summary.csv")
    targets.append("results/report/index.md")  # the report rule writes all its files together
    return targets


# ---- shards: a chunk's folder is keyed by the settings that decide its bytes (remoteclip.shards)
def run_shard_settings(run):
    """The settings that decide a run's chunk bytes; a run's super-resolution step joins them
    only where configured."""
    sr = config["runs"][run].get("super_resolution")
    return ShardSettings(
        **config["shards"],
        seed=config["seed"],
        super_resolution=dict(sr) if sr is not None else None,
    )


# {settings key: settings}: runs with the same settings share one folder of chunks per source
SHARD_SETTINGS = {settings_key(run_shard_settings(run)): run_shard_settings(run) for run in RUNS}
SHARD_KEY = {run: settings_key(run_shard_settings(run)) for run in RUNS}


def source_plan(dataset, key):
    return str(source_folder("results/shards", dataset, key) / "plan.json")


def run_chunk_files(wildcards):
    """Every chunk file of the run's sources; each plan is read once its checkpoint has run."""
    key = SHARD_KEY[wildcards.run]
    files = []
    for dataset in sources_of(wildcards.run):
        plan = checkpoints.plan_shards.get(dataset=dataset, settings=key).output.plan
        files += chunk_files(plan)
    return files


# ---- training: the launch follows from a run's resources (remoteclip.train.launch)
def train_resources(run):
    return {"tasks_per_node": 1, **config["runs"][run]["resources"]}


def train_settings(run):
    """What remoteclip.train reads: the run's model and train settings and, where it has any,
    its source weights (left out otherwise: an unweighted run's command stays as it was)."""
    spec = config["runs"][run]
    return {k: spec[k] for k in ("model", "train")} | ({"weights": spec["weights"]} if spec.get("weights") else {})


def by_run_resources(fn):
    """A params/resources function of the {run} wildcard, computed from the run's resources."""
    return lambda wildcards: fn(train_resources(wildcards.run))


_resource_errors = [e for run in RUNS for e in launch.resource_errors(run, train_resources(run))]
if _resource_errors:
    raise WorkflowError("\n".join(_resource_errors))


# ---- evaluation: models, benchmarks and the result files they give
EVAL = config["evaluation"]
config["zoo"] = str(resolve_path(config["zoo"], workflow.basedir))  # the model zoo, config/models.yaml
try:
    # the leaderboard's (zoo model, prompt protocol) pairs are evaluation models like the others
    EVAL["models"] = {**EVAL["models"], **leaderboard_models(config)}
    EVAL_MODELS = {n: resolve_eval_model(n, e, config) for n, e in EVAL["models"].items()}
    # {evaluation model: the folder its image features are in}: one per zoo entry, whatever the prompts
    IMAGE_SET = image_sets(EVAL_MODELS)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
OWN_IMAGES = models_with_own_images(IMAGE_SET)  # their images and texts in one `features` job
SHARED_IMAGES = sorted(set(IMAGE_SET.values()) - set(OWN_IMAGES))  # `image_features`, then `text_features`
# {image set: the model spec that encodes its images (the text side left out)}
IMAGE_SPECS = {key: {**image_spec(EVAL_MODELS[n]), "name": key} for n, key in IMAGE_SET.items()}
BENCHMARKS = evaluation_benchmarks(config)
# every dataset with a split file: the benchmarks scored and the test splits de-duplication protects
SPLIT_BENCHMARKS = sorted(set(BENCHMARKS) | set(testsets()))


def tasks_of(benchmark):
    return [t for t in TASKS_BY_GROUP[DATASETS[benchmark].group] if t in EVAL["tasks"]]


def eval_results():
    return [f"results/eval/{m}/{b}.{t}.json" for m in sorted(EVAL_MODELS) for b in BENCHMARKS for t in tasks_of(b)]


def model_inputs(wildcards):
    """The evaluation model's checkpoint file or weight manifests (`weights_of`)."""
    return weights_of(EVAL_MODELS[wildcards.model])


def image_model_inputs(wildcards):
    """The weights of the model that encodes an image set (`weights_of`)."""
    return weights_of(IMAGE_SPECS[wildcards.image_set])


def weights_of(spec):
    """A model's checkpoint file (a run's export, a given file) or the manifests of the
    weights it is built from (fetched into the cache by `fetch_weights`)."""
    fetched = weight_manifests(eval_sources(spec))
    return fetched if fetched else [spec["checkpoint"]] if spec.get("checkpoint") else []


def eval_settings():
    return {k: EVAL[k] for k in ("knn", "linear_probe", "fewshot", "counting", "templates", "retrieval")}


def task_outputs(group):
    return [f"results/eval/{{model}}/{{benchmark}}.{t}.json" for t in TASKS_BY_GROUP[group] if t in EVAL["tasks"]]


# ---- the report
REPORT_MODELS = describe_models(EVAL["models"], EVAL_MODELS)


def zoo_published():
    """{evaluation model: its zoo entry, prompt protocol, the authors' numbers with their
    protocols and ours} for the leaderboard page (remoteclip.evaluate.protocols)."""
    return published_beside_ours(config, EVAL_MODELS)


_paper_rows = paper_models()
_unknown_paper = {n: e["paper"] for n, e in EVAL["models"].items() if e.get("paper") and e["paper"] not in _paper_rows}
if _unknown_paper:
    raise WorkflowError(
        "evaluation.models: unknown paper rows "
        + ", ".join(f"{n}.paper={p!r}" for n, p in _unknown_paper.items())
        + f" (the paper's rows: {', '.join(_paper_rows)})"
    )


def report_runs():
    return {
        run: {
            "log": f"results/train/{run}/log.csv",
            "sources": sources_of(run),
            "groups": sorted({DATASETS[s].group for s in sources_of(run)}),
            "start": start_key(resolve_eval_model(run, {"run": run, "init": True}, config)),
        }
        for run in RUNS
    }


def reported(name, category, subcategory=None):
    # caption paths are relative to this file: workflow/report/<name>.rst
    return report(report_file(name), caption=f"../report/{name}.rst", category=category, subcategory=subcategory)


def report_file(name):
    return f"results/report/{REPORT_OUTPUTS[name]}"
