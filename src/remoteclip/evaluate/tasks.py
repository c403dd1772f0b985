"""The evaluation tasks on cached features; results in CLIP_benchmark's shape
({dataset, model, task, metrics}) plus the protocol and the versions used."""

from __future__ import annotations

import platform
from typing import Any

import numpy as np

from .counting import counting_metrics
from .fewshot import fewshot
from .knn import knn_metrics
from .probe import linear_probe
from .retrieval import TIE_ORDERS, retrieval_metrics
from .zeroshot import classify, zeroshot_metrics


def versions() -> dict[str, str]:
    import open_clip
    import torch

    from .. import __version__

    return {
        "remoteclip": __version__,
        "open_clip": open_clip.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _cls_arrays(images: dict, raw: bool = False, train: bool = True):
    """(train_x, train_y, test_x, test_y): normalised features, or with `raw` the raw embeddings;
    `train`: the task trains on the train part, which the cached features must then hold."""
    test = images["is_test"]
    if train and test.all():
        raise ValueError(
            "the cached image features hold the test images only (written when zero-shot was the only "
            "classification task): rerun the features rule (snakemake --forcerun features)"
        )
    x = raw_features(images) if raw else images["features"]
    return x[~test], images["labels"][~test], x[test], images["labels"][test]


def raw_features(images: dict) -> np.ndarray:
    """The raw `encode_image` output: the cached unit vectors times their norms."""
    if "norms" not in images:
        raise ValueError(
            "the cached image features have no 'norms' (written by an older version): "
            "rerun the features rule (snakemake --forcerun features)"
        )
    return images["features"].astype(np.float64) * images["norms"].astype(np.float64)[:, None]


def probe_inputs(images: dict, probe_settings: dict):
    """What the linear probe (and few-shot) trains on: the paper protocol, as ITRA's
    linear_eval, takes the raw embedding; the validated protocol normalises (it does itself)."""
    return _cls_arrays(images, raw=probe_settings["protocol"] == "paper")


def probe_input_record(probe_settings: dict) -> str:
    if probe_settings["protocol"] == "paper":
        return "raw encode_image output (as ITRA's linear_eval), restored as cached unit vectors x their norms"
    return "L2-normalised encode_image output"


def zeroshot(split, images, texts, settings) -> tuple[dict, dict]:
    _, _, test_x, test_y = _cls_arrays(images, train=False)
    logits = classify(test_x, texts["class_features"])
    protocol = {
        "split": split["rule"],
        "templates": list(texts["templates"]),
        "classnames": split["classnames"],
        "test_images": int(len(test_y)),
    }
    return zeroshot_metrics(logits, test_y, len(split["classes"])), protocol


def linear(split, images, texts, settings) -> tuple[dict, dict]:
    train_x, train_y, test_x, test_y = probe_inputs(images, settings["linear_probe"])
    out = linear_probe(train_x, train_y, test_x, test_y, len(split["classes"]), **settings["linear_probe"])
    return out["metrics"], {
        "split": split["rule"],
        "input": probe_input_record(settings["linear_probe"]),
        **out["protocol"],
    }


def knn(split, images, texts, settings) -> tuple[dict, dict]:
    train_x, train_y, test_x, test_y = _cls_arrays(images)
    k, t = settings["knn"]["k"], settings["knn"]["temperature"]
    metrics = knn_metrics(train_x, train_y, test_x, test_y, len(split["classes"]), k=k, temperature=t)
    return metrics, {"split": split["rule"], "k": k, "temperature": t, "voting": "sum of exp(cos/T) over the k nearest"}


def few(split, images, texts, settings, probe_result: dict | None = None) -> tuple[dict, dict]:
    train_x, train_y, test_x, test_y = probe_inputs(images, settings["linear_probe"])
    fs = settings["fewshot"]
    probe = settings["linear_probe"]
    if probe_result is None and probe["protocol"] == "validated":  # the probe picks the weight decay
        probe_result = {
            "protocol": linear_probe(train_x, train_y, test_x, test_y, len(split["classes"]), **probe)["protocol"]
        }
    weight_decay = (probe_result or {}).get("protocol", {}).get("weight_decay")
    out = fewshot(
        train_x,
        train_y,
        test_x,
        test_y,
        len(split["classes"]),
        shots=tuple(fs["shots"]),
        seeds=fs["seeds"],
        weight_decay=weight_decay,
        protocol=probe["protocol"],
    )
    return out["metrics"], {"split": split["rule"], "input": probe_input_record(probe), **out["protocol"]}


def retrieval(split, images, texts, settings) -> tuple[dict, dict]:
    tie_order = settings["retrieval"]["tie_order"]
    metrics = retrieval_metrics(
        images["features"], texts["caption_features"], np.array(split["caption_to_image"]), tie_order=tie_order
    )
    return metrics, {
        "split": split["rule"],
        "images": len(split["images"]),
        "captions": len(split["captions"]),
        "distinct_captions": len(set(split["captions"])),
        "scores": "float32 dot product of L2-normalised embeddings (texts x images)",
        "recall": "hit if any correct item in top k",
        "tie_order": tie_order,
        "ranking": TIE_ORDERS[tie_order],
        "ties": "metrics.ties: per R@k the queries whose hit depends on the order of exact ties "
        "(tie_dependent) and the lowest and highest value any tie order could give",
    }


def counting(split, images, texts, settings) -> tuple[dict, dict]:
    counts = images["counts"]
    categories = images["categories"]
    classes = list(texts["classes"])
    out = {}
    for v, variant in enumerate(texts["variants"]):
        # each image against the ten number variants of its own class caption
        captions = texts["caption_features"][:, v]  # (classes, 10, d)
        sims = np.stack([captions[classes.index(c)] @ f for f, c in zip(images["features"], categories)])
        out[str(variant)] = counting_metrics(sims, counts)
    protocol = {
        "set": split["rule"],
        "square": split.get("square"),
        "tile": split.get("tile"),
        "samples": int(len(counts)),
        "variants": list(map(str, texts["variants"])),
        "caption": "There are {n} {class plural} in the image.",
        "classes": classes,
    }
    return out, protocol


RUNNERS = {
    "zeroshot": zeroshot,
    "linear_probe": linear,
    "knn": knn,
    "fewshot": few,
    "retrieval": retrieval,
    "counting": counting,
}


def run(
    task: str,
    benchmark: str,
    model: dict,
    split: dict,
    images: dict,
    texts: dict | None,
    settings: dict[str, Any],
    probe_result: dict | None = None,
) -> dict:
    runner = RUNNERS[task]
    args = (split, images, texts, settings) + ((probe_result,) if task == "fewshot" else ())
    metrics, protocol = runner(*args)
    return {
        "dataset": benchmark,
        "model": model["name"],
        "pretrained": model.get("pretrained") or model.get("checkpoint"),
        "task": task,
        "metrics": metrics,
        "protocol": protocol,
        "model_spec": model,
        "versions": versions(),
    }
