"""What the workflow evaluates, resolved from the config without importing torch or
open_clip: Snakemake reads this while it parses the workflow, in every cluster job too."""

from __future__ import annotations

from typing import Any

from ..schema import defaults
from ..weight_cache import released_path

TASKS_BY_GROUP = {"CLS": ("zeroshot", "linear_probe", "knn", "fewshot"), "RET": ("retrieval",), "COUNT": ("counting",)}

RELEASED = {
    "RemoteCLIP-RN50": "RN50",
    "RemoteCLIP-ViT-B-32": "ViT-B-32",
    "RemoteCLIP-ViT-L-14": "ViT-L-14",
}
RELEASED_URL = "https://huggingface.co/chendelong/RemoteCLIP/resolve/main/{name}.pt"
_DEFAULTS = defaults("$defs.eval_model")  # for entries given outside a validated config


def resolve(name: str, entry: dict[str, Any], config: dict) -> dict[str, Any]:
    """A flat, JSON-able description of an evaluation model (what the rules pass around).
    `config` has its data paths resolved (`config.resolve_data_paths`): released weights lie
    in the weights cache unless the entry names a `checkpoint`."""
    if "run" in entry:
        run = config["runs"][entry["run"]]
        model, seed = run["model"], run["train"]["seed"]
        arch = model["arch"]
        # None: decided when the model is built, from the weights it started from
        quick = True if model["force_quick_gelu"] else None
        if entry.get("init"):  # the run's starting point: its pretrained weights or its seeded random init
            spec = {
                "name": name,
                "arch": arch,
                "pretrained": model["pretrained"],
                "checkpoint": None,
                "quick_gelu": quick,
                "seed": seed,
                "origin": f"initialisation of run {entry['run']}",
            }
            towers = model.get("pretrained_towers", ["image", "text"])
            if sorted(towers) != ["image", "text"]:  # given only then: other specs stay as they were
                spec["pretrained_towers"] = list(towers)
            return spec
        return {
            "name": name,
            "arch": arch,
            "pretrained": None,
            "checkpoint": f"results/models/{entry['run']}.pt",
            "quick_gelu": quick,
            "trained_from": model["pretrained"],
            "seed": seed,
            "origin": f"run {entry['run']}",
        }
    if "released" in entry:
        release = entry["released"]
        given = entry.get("checkpoint")
        return {
            "name": name,
            "arch": RELEASED[release],
            "pretrained": None,
            "released": release,
            "checkpoint": given or str(released_path(config["data"]["weights"], release)),
            "checkpoint_given": bool(given),
            "quick_gelu": entry.get("quick_gelu", True),
            "seed": 0,
            "url": RELEASED_URL.format(name=release),
            "trust_checkpoint": entry.get("trust_checkpoint", _DEFAULTS["trust_checkpoint"]),
            "origin": f"released {release}",
        }
    arch = entry["arch"]
    quick = entry.get("quick_gelu")
    return {
        "name": name,
        "arch": arch,
        "pretrained": entry.get("pretrained"),
        "checkpoint": entry.get("checkpoint"),
        "quick_gelu": quick,
        "seed": entry.get("seed", 0),
        "url": entry.get("url"),
        "trust_checkpoint": entry.get("trust_checkpoint", _DEFAULTS["trust_checkpoint"]),
        "origin": entry.get("checkpoint") or f"open_clip {arch}/{entry.get('pretrained')}",
    }
