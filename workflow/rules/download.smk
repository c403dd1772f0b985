# Raw data that is not rendered: catalogue datasets are downloaded and verified, local
# datasets (`root:` alone) are checked where they lie. Both end in the marker that the
# parse and caption rules wait for, like the synthetic demo's.

from remoteclip.config import resolve_path

CATALOGUED = sorted(CATALOGUE)
LOCAL = sorted(n for n, d in config["datasets"].items()
               if d.get("root") and d.get("synthetic") is None and not d.get("catalogue"))
LOCK = str(resolve_path(config["download"]["lock"], workflow.basedir))


rule download:
    output:
        marker="results/raw/{dataset}/.verified",
    params:
        dataset=dataset_params,
        entry=lambda w: CATALOGUE[w.dataset],
        lock=LOCK,
        retries=config["download"]["retries"],
        timeout=config["download"]["timeout"],
    wildcard_constraints:
        dataset=wildcard_regex(CATALOGUED),
    # on many clusters only the login node reaches the internet; a manual step also needs
    # the person at the terminal to see its message
    localrule: True
    conda:
        "../../envs/data.yaml"
    log:
        "results/logs/download/{dataset}.log",
    script:
        "../../scripts/download.py"


rule local_dataset:
    output:
        marker="results/raw/{dataset}/.verified",
    params:
        dataset=dataset_params,
    wildcard_constraints:
        dataset=wildcard_regex(LOCAL),
    localrule: True
    conda:
        "../../envs/data.yaml"
    log:
        "results/logs/download/{dataset}.log",
    script:
        "../../scripts/download.py"
