"""Rules `evaluate_cls` / `evaluate_ret` / `evaluate_count`: every task of one benchmark
on cached features; one CLIP_benchmark-shaped JSON per task,
results/eval/{model}/{benchmark}.{task}.json."""

import json

import numpy as np

from remoteclip.evaluate.tasks import run
from remoteclip.logs import rule_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]) as log:
    split = json.load(open(sm.input.split))
    images = dict(np.load(sm.input.images))
    texts = dict(np.load(sm.input.texts))
    results = {}
    for task, path in zip(sm.params.tasks, sm.output):
        result = run(
            task,
            sm.wildcards.benchmark,
            sm.params.model,
            split,
            images,
            texts,
            sm.params.settings,
            results.get("linear_probe"),
        )
        results[task] = result
        with open(path, "w") as fh:
            json.dump(result, fh, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
        log.info(
            "%s %s %s: %s",
            sm.wildcards.model,
            sm.wildcards.benchmark,
            task,
            {k: v for k, v in result["metrics"].items() if not isinstance(v, (dict, list))},
        )
