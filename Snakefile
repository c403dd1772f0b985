# RemoteCLIP, rebuilt: download -> parse/M2B -> B2C -> captions -> dedup -> shards -> train -> evaluate -> report
#
#   snakemake --cores all                                   # the embedded synthetic demo
#   snakemake --cores all --configfile config/paper.yaml   # the full reproduction
#   snakemake --workflow-profile profiles/slurm ...        # on a SLURM cluster

import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# the library lives in src/; an editable install finds it too, this keeps `--sdm conda` envs working
sys.path.insert(0, str(Path(workflow.basedir) / "src"))


# `--configfile X` replaces the demo config instead of being merged into it, so no demo
# dataset leaks into e.g. the paper configuration.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# `snakemake --report results/report.zip`: the report rule's tables and plots, with captions
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/synthesize.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/convert.smk"
include: "workflow/rules/dedup.smk"
include: "workflow/rules/shards.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/dvc.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
