# Raw datasets -> unified COCO annotations (parsers, Mask-to-Box) -> captions (B2C, RET).

from remoteclip.config import resolve_path
from remoteclip.formats import UNITS

# datasets whose format parses in independent units (Stanford Drone: one per video), one job each
UNIT_DATASETS = names_where(lambda s: s.format in UNITS and s.group in ("DET", "SEG"))


checkpoint list_units:
    input:
        marker=lambda w: marker(w.dataset),
    output:
        units="results/annotations/{dataset}.units.json",
    log:
        "results/logs/parse/{dataset}.units.log",
    wildcard_constraints:
        dataset=wildcard_regex(UNIT_DATASETS),
    conda:
        "../../envs/data.yaml"
    params:
        dataset=dataset_params,
    script:
        "../../scripts/parse.py"


rule parse_unit:
    input:
        marker=lambda w: marker(w.dataset),
        units="results/annotations/{dataset}.units.json",
    output:
        part="results/annotations/{dataset}.units/{unit}.json",
    log:
        "results/logs/parse/{dataset}/{unit}.log",
    wildcard_constraints:
        dataset=wildcard_regex(UNIT_DATASETS),
        unit="[^/]+/[^/]+",
    conda:
        "../../envs/data.yaml"
    params:
        dataset=dataset_params,
    script:
        "../../scripts/parse.py"


rule parse:
    input:
        marker=lambda w: marker(w.dataset),
        # a format that parses in units: their files, in the order list_units gave; else none
        units=lambda w: (
            [
                f"results/annotations/{w.dataset}.units/{u}.json"
                for u in json.loads(Path(checkpoints.list_units.get(dataset=w.dataset).output.units).read_text())
            ]
            if w.dataset in UNIT_DATASETS
            else []
        ),
    output:
        annotations="results/annotations/{dataset}.json",
        report="results/annotations/{dataset}.report.json",
    log:
        "results/logs/parse/{dataset}.log",
    wildcard_constraints:
        dataset=wildcard_regex(BOXED),
    conda:
        "../../envs/data.yaml"
    params:
        dataset=dataset_params,
    script:
        "../../scripts/parse.py"


rule b2c:
    input:
        annotations="results/annotations/{dataset}.json",
        parse_report="results/annotations/{dataset}.report.json",
        templates=str(resolve_path(config["b2c"]["templates"], workflow.basedir)),
    output:
        captions="results/captions/{dataset}.jsonl",
        report="results/captions/{dataset}.report.json",
    log:
        "results/logs/b2c/{dataset}.log",
    wildcard_constraints:
        dataset=wildcard_regex(BOXED),
    conda:
        "../../envs/data.yaml"
    params:
        dataset=dataset_params,
        b2c={k: v for k, v in config["b2c"].items() if k != "templates"},
    script:
        "../../scripts/b2c.py"


# RET and WEB datasets' own captions; the parser follows the format (karpathy: RSICD/RSITMD/UCM
# JSON; hf_tsv: RemoteCLIP's released tables, used as they are instead of regenerating them;
# webdataset, parquet: web corpora, whose rows say where each image lies in its tar or file)
rule ret_captions:
    input:
        marker=lambda w: marker(w.dataset),
    output:
        captions="results/captions/{dataset}.jsonl",
        report="results/captions/{dataset}.report.json",
    log:
        "results/logs/captions/{dataset}.log",
    wildcard_constraints:
        dataset=wildcard_regex(OWN_CAPTIONS),
    conda:
        "../../envs/data.yaml"
    params:
        dataset=dataset_params,
    script:
        "../../scripts/ret_captions.py"


rule captions_summary:
    input:
        reports=expand("results/captions/{dataset}.report.json", dataset=CAPTIONED),
    output:
        summary="results/captions/summary.json",
    log:
        "results/logs/captions_summary.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../../scripts/captions_summary.py"
