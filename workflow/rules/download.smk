# Raw data that is not rendered, all under the data folder (`data.root`, outside results/):
# catalogue datasets are fetched (archives in <data>/archives/<dataset>/, on the machine that
# runs Snakemake: on a cluster the login node, which has the internet), then verified and
# unpacked by a normal job into <data>/raw/<dataset>/ (`download.unpack: job`; `local` does it
# on the login node too). Local datasets (`root:` alone) are checked where they lie. Each ends
# in the marker that the parse and caption rules wait for, like the synthetic demo's.

from remoteclip.config import resolve_path

CATALOGUED = sorted(CATALOGUE)
LOCAL = sorted(
    n
    for n, d in config["datasets"].items()
    if d.get("root") and d.get("synthetic") is None and not d.get("catalogue") and n not in CATALOGUE
)
LOCK = str(resolve_path(config["download"]["lock"], workflow.basedir))
UNPACK = config["download"]["unpack"]


rule fetch_dataset:
    output:
        fetched=f"{DATA}/archives/{{dataset}}/.fetched",
    log:
        "results/logs/download/{dataset}.fetch.log",
    wildcard_constraints:
        dataset=wildcard_regex(CATALOGUED),
    # only the login node may reach the internet; a manual step also needs the person at
    # the terminal to see its message
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        dataset=dataset_params,
        entry=lambda w: CATALOGUE[w.dataset],
        lock=LOCK,
        retries=config["download"]["retries"],
        timeout=config["download"]["timeout"],
    script:
        "../../scripts/download.py"


rule download:
    input:
        fetched=f"{DATA}/archives/{{dataset}}/.fetched",
    output:
        marker=f"{DATA}/raw/{{dataset}}/.verified",
    log:
        "results/logs/download/{dataset}.log",
    wildcard_constraints:
        dataset=wildcard_regex(CATALOGUED),
    localrule: UNPACK == "local"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=config["download"]["resources"]["mem_mb"],
        runtime=config["download"]["resources"]["runtime"],
    params:
        dataset=dataset_params,
        entry=lambda w: CATALOGUE[w.dataset],
        lock=LOCK,
    script:
        "../../scripts/download.py"


rule local_dataset:
    output:
        marker=f"{DATA}/raw/{{dataset}}/.verified",
    log:
        "results/logs/download/{dataset}.log",
    wildcard_constraints:
        dataset=wildcard_regex(LOCAL),
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        dataset=dataset_params,
    script:
        "../../scripts/download.py"
