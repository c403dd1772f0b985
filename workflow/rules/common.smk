# Configuration, dataset lookup and target lists shared by every rule file.

import json
import re
import sys

from snakemake.exceptions import WorkflowError

from remoteclip.config import (ConfigError, dataset_specs, protected_testsets, resolve_catalogue,
                               resolve_data_paths, run_sources, validate)

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
PYTHON = "python" if workflow.deployment_settings and "conda" in str(
    workflow.deployment_settings.deployment_method).lower() else sys.executable


def names_where(predicate):
    return sorted(n for n, s in DATASETS.items() if predicate(s))


def wildcard_regex(names):
    """A wildcard constraint matching exactly these dataset names (nothing when empty)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


SYNTHETIC = names_where(lambda s: s.synthetic is not None)
RET = names_where(lambda s: s.group == "RET")
BOXED = names_where(lambda s: s.group in ("DET", "SEG"))
CAPTIONED = RET + BOXED


def weight_manifests(sources):
    """The fetch_weights outputs a job waits for (remoteclip.weight_cache)."""
    from remoteclip.weight_cache import manifest_path
    return [str(manifest_path(WEIGHTS, s)) for s in sources]


def marker(dataset):
    """The file that says a dataset's raw files are complete (downloaded, verified or rendered);
    it sits in the data folder even when the dataset's own files lie elsewhere (`root:`)."""
    return f"{DATA}/raw/{dataset}/.verified"


def dataset_params(wildcards):
    return config["datasets"][wildcards.dataset]


RUNS = sorted(config["runs"])


def sources_of(run):
    return run_sources(config, run)


def testsets():
    return protected_testsets(config)


def all_targets():
    targets = ["results/captions/summary.json"]
    targets += expand("results/models/{run}.pt", run=RUNS)
    if config["evaluation"]["models"]:
        targets.append("results/eval/summary.csv")
    targets.append("results/report/index.md")  # the report rule writes all its files together
    return targets
