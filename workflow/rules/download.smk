# Raw data that is not rendered, all under the data folder (`data.root`, outside results/):
# each file of a catalogue dataset is fetched (into <data>/archives/<dataset>/, on the machine
# that runs Snakemake: on a cluster the login node, which has the internet), verified by a job
# of its own, and installed into <data>/raw/<dataset>/ by a job of its own (`download.unpack:
# job`; `local` does both on the login node too), each with its marker, so a failure on the
# last of many archives redoes that archive only. Installs follow the catalogue's file order
# (a later archive may replace files of an earlier one). Local datasets (`root:` alone) are
# checked where they lie. Each ends in the marker that the parse and caption rules wait for,
# like the synthetic demo's. Marker names: remoteclip.download.archive. A file the catalogue's
# `img2dataset:` block names as a URL list (GAIA) has its images fetched once it is installed
# (`fetch_images`, on the login node too), before the dataset's marker.

from remoteclip.config import resolve_path
from remoteclip.download import EXTRACTED_DIR
from remoteclip.download.specs import file_specs
from remoteclip.download.urllists import url_lists_of

CATALOGUED = sorted(CATALOGUE)
LOCAL = sorted(
    n
    for n, d in config["datasets"].items()
    if d.get("root") and d.get("synthetic") is None and not d.get("catalogue") and n not in CATALOGUE
)
LOCK = str(resolve_path(config["download"]["lock"], workflow.basedir))
UNPACK = config["download"]["unpack"]
# {dataset: its files in catalogue order}
FILES = {n: [s.name for s in file_specs(n, CATALOGUE[n])] for n in CATALOGUED}
ARCHIVE_NAMES = sorted({f for files in FILES.values() for f in files})
# {dataset: its files that are URL lists whose images img2dataset fetches}
URL_LISTS = {n: url_lists_of(n, CATALOGUE[n]) for n in CATALOGUED}
URL_LIST_NAMES = sorted({f for files in URL_LISTS.values() for f in files})
IMG2DATASET = str(resolve_path(config["download"]["img2dataset_packages"], workflow.basedir))


rule fetch_archive:
    output:
        fetched=f"{DATA}/archives/{{dataset}}/{{archive}}.fetched",
    log:
        "results/logs/download/{dataset}/{archive}.fetch.log",
    wildcard_constraints:
        dataset=wildcard_regex(CATALOGUED),
        archive=wildcard_regex(ARCHIVE_NAMES),
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


# every file of a dataset fetched: `snakemake <data>/archives/<dataset>/.fetched` on a login node
rule fetch_dataset:
    input:
        fetched=lambda w: [f"{DATA}/archives/{w.dataset}/{f}.fetched" for f in FILES[w.dataset]],
    output:
        fetched=f"{DATA}/archives/{{dataset}}/.fetched",
    log:
        "results/logs/download/{dataset}.fetch.log",
    wildcard_constraints:
        dataset=wildcard_regex(CATALOGUED),
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        dataset=dataset_params,
    script:
        "../../scripts/download.py"


rule verify_archive:
    input:
        fetched=f"{DATA}/archives/{{dataset}}/{{archive}}.fetched",
    output:
        verified=f"{DATA}/archives/{{dataset}}/{{archive}}.verified",
    log:
        "results/logs/download/{dataset}/{archive}.verify.log",
    wildcard_constraints:
        dataset=wildcard_regex(CATALOGUED),
        archive=wildcard_regex(ARCHIVE_NAMES),
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


rule install_archive:
    input:
        verified=f"{DATA}/archives/{{dataset}}/{{archive}}.verified",
        # installs form a chain in catalogue order: the file before this one is installed first
        before=lambda w: [
            f"{DATA}/raw/{w.dataset}/{EXTRACTED_DIR}/{f}"
            for f in FILES[w.dataset][: FILES[w.dataset].index(w.archive)][-1:]
        ],
    output:
        installed=f"{DATA}/raw/{{dataset}}/{EXTRACTED_DIR}/{{archive}}",
    log:
        "results/logs/download/{dataset}/{archive}.install.log",
    wildcard_constraints:
        dataset=wildcard_regex(CATALOGUED),
        archive=wildcard_regex(ARCHIVE_NAMES),
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


# the images of an installed URL list, fetched by img2dataset into WebDataset tars beside it;
# the output is the fetch's summary (counts, failures per reason)
rule fetch_images:
    input:
        installed=f"{DATA}/raw/{{dataset}}/{EXTRACTED_DIR}/{{archive}}",
    output:
        summary=f"{DATA}/raw/{{dataset}}/{EXTRACTED_DIR}/{{archive}}.images.json",
    log:
        "results/logs/download/{dataset}/{archive}.images.log",
    wildcard_constraints:
        dataset=wildcard_regex(sorted(n for n in URL_LISTS if URL_LISTS[n])),
        archive=wildcard_regex(URL_LIST_NAMES),
    # the internet is reachable from the login node only
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        dataset=dataset_params,
        entry=lambda w: CATALOGUE[w.dataset],
        packages=IMG2DATASET,
    script:
        "../../scripts/download.py"


# the dataset's marker, from its files' markers (one small JSON file: no job of its own)
rule download:
    input:
        installed=lambda w: [f"{DATA}/raw/{w.dataset}/{EXTRACTED_DIR}/{f}" for f in FILES[w.dataset]],
        images=lambda w: [f"{DATA}/raw/{w.dataset}/{EXTRACTED_DIR}/{f}.images.json" for f in URL_LISTS[w.dataset]],
    output:
        marker=f"{DATA}/raw/{{dataset}}/.verified",
    log:
        "results/logs/download/{dataset}.log",
    wildcard_constraints:
        dataset=wildcard_regex(CATALOGUED),
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        dataset=dataset_params,
        entry=lambda w: CATALOGUE[w.dataset],
        archives=lambda w: f"{DATA}/archives/{w.dataset}",
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
