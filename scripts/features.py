"""Rules `features`, `image_features` and `text_features`: the image embeddings of one model on
one benchmark, results/features/{model or image set}/{benchmark}.npz, and/or the text embeddings
of one evaluation model (a model and its prompts), results/features/{model}/{benchmark}.text.npz:
whichever the rule's outputs name."""

import json

from remoteclip.weights.cache import go_offline

go_offline()  # a compute node may have no internet: weights come from the cache, never downloaded

import numpy as np  # noqa: E402

from remoteclip.devices import device_for  # noqa: E402
from remoteclip.evaluate.features import embed_images, embed_texts  # noqa: E402
from remoteclip.evaluate.models import load  # noqa: E402
from remoteclip.logs import rule_log  # noqa: E402

sm = snakemake  # noqa: F821 (injected by Snakemake)
outputs = dict(sm.output.items())
name = "/".join(sm.wildcards)
with rule_log(sm.log[0]) as log:
    split = json.load(open(sm.input.split))
    device = device_for(sm.params.device)
    model, preprocess, tokenizer = load(sm.params.model, device, weights_cache=sm.params.weights_cache)
    if "images" in outputs:
        images = embed_images(
            model, preprocess, split, device, sm.params.batch_size, sm.params.workers, name, sm.params.test_only
        )
        np.savez(outputs["images"], **images)
        log.info("%s: %d images", name, len(images["features"]))
    if "texts" in outputs:
        texts = embed_texts(model, tokenizer, split, list(sm.params.templates), list(sm.params.variants), device)
        np.savez(outputs["texts"], **texts)
        log.info("%s: %s", name, {k: v.shape for k, v in texts.items()})
