"""Rule `eval_split`: the reviewable list of what a benchmark scores,
results/splits/{benchmark}.json."""

import json

from remoteclip.config import dataset_spec
from remoteclip.evaluate.sets import build
from remoteclip.logs import rule_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]):
    spec = dataset_spec(sm.wildcards.benchmark, sm.params.dataset)
    split = build(spec, sm.params.dataset.get("classes"), sm.params.train_fraction, sm.params.counting)
    with open(sm.output.split, "w") as fh:
        json.dump(split, fh, indent=1)
