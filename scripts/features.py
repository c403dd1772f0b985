"""Rule `features`: image and text embeddings of one model on one benchmark."""

import json

import numpy as np

from remoteclip.evaluate import features as F
from remoteclip.evaluate.counting import count_captions
from remoteclip.evaluate.models import load
from remoteclip.logs import rule_log
from remoteclip.train.distributed import World, device_for

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]) as log:
    split = json.load(open(sm.input.split))
    device = device_for(World(), sm.params.device)
    model, preprocess, tokenizer = load(sm.params.model, device)
    items, arrays = F.items_for(split)
    feats = F.image_features(model, preprocess, items, device, sm.params.batch_size, sm.params.workers,
                             desc=f"{sm.wildcards.model}/{sm.wildcards.benchmark}")
    np.savez(sm.output.images, features=feats, **arrays)
    if split["group"] == "CLS":
        templates = list(sm.params.templates)
        np.savez(sm.output.texts, templates=np.array(templates),
                 class_features=F.class_embeddings(model, tokenizer, split["classnames"], templates, device))
    elif split["group"] == "RET":
        np.savez(sm.output.texts, caption_features=F.text_features(model, tokenizer, split["captions"], device))
    else:
        classes = sorted({s["category"] for s in split["samples"]})
        variants = list(sm.params.variants)
        captions = [c for cls in classes for v in variants for c in count_captions(cls, v)]
        text = F.text_features(model, tokenizer, captions, device).reshape(len(classes), len(variants), 10, -1)
        np.savez(sm.output.texts, caption_features=text, classes=np.array(classes), variants=np.array(variants))
    log.info("%s on %s: %d images", sm.wildcards.model, sm.wildcards.benchmark, len(feats))
