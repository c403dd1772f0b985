"""Rule `features`: image and text embeddings of one model on one benchmark,
results/features/{model}/{benchmark}.npz and {benchmark}.text.npz."""

import json

from remoteclip.weight_cache import go_offline

go_offline()  # a compute node may have no internet: weights come from the cache, never downloaded

import numpy as np  # noqa: E402

from remoteclip.devices import device_for  # noqa: E402
from remoteclip.evaluate.features import embed  # noqa: E402
from remoteclip.evaluate.models import load  # noqa: E402
from remoteclip.logs import rule_log  # noqa: E402

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]) as log:
    split = json.load(open(sm.input.split))
    device = device_for(sm.params.device)
    model, preprocess, tokenizer = load(sm.params.model, device, weights_cache=sm.params.weights_cache)
    images, texts = embed(
        model,
        preprocess,
        tokenizer,
        split,
        list(sm.params.templates),
        list(sm.params.variants),
        device,
        sm.params.batch_size,
        sm.params.workers,
        desc=f"{sm.wildcards.model}/{sm.wildcards.benchmark}",
    )
    np.savez(sm.output.images, **images)
    np.savez(sm.output.texts, **texts)
    log.info("%s on %s: %d images", sm.wildcards.model, sm.wildcards.benchmark, len(images["features"]))
