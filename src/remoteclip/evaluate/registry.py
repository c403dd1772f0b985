"""What the workflow evaluates, resolved from the config without importing torch or
open_clip: Snakemake reads this while it parses the workflow, in every cluster job too."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from ..config import ConfigError
from ..image_encoders import hybrid_arch
from ..schema import defaults
from ..weights.cache import released_path, repo_dir, tokenizer_repo_of, url_file, weights_file, zoo_sources
from ..zoo import entry as zoo_entry
from ..zoo import load_zoo, zoo_protocols

TASKS_BY_GROUP = {"CLS": ("zeroshot", "linear_probe", "knn", "fewshot"), "RET": ("retrieval",), "COUNT": ("counting",)}
TRAIN_IMAGE_TASKS = ("linear_probe", "knn", "fewshot")  # the classification tasks that train on the train part


def reads_train_images(tasks) -> bool:
    """Whether any of `tasks` reads a classification benchmark's train images (zero-shot alone
    reads its test images only, so its features need not embed the train part)."""
    return any(task in TRAIN_IMAGE_TASKS for task in tasks)


RELEASED = {
    "RemoteCLIP-RN50": "RN50",
    "RemoteCLIP-ViT-B-32": "ViT-B-32",
    "RemoteCLIP-ViT-L-14": "ViT-L-14",
}
RELEASED_URL = "https://huggingface.co/chendelong/RemoteCLIP/resolve/main/{name}.pt"
_DEFAULTS = defaults("$defs.eval_model")  # for entries given outside a validated config
DEFAULT_TEMPLATES = defaults("evaluation")["templates"]
# what a spec holds for the text side and the report only: the image features do not depend on it
TEXT_ONLY = ("name", "templates", "protocol", "paper")


def resolve(name: str, entry: dict[str, Any], config: dict) -> dict[str, Any]:
    """A flat, JSON-able description of an evaluation model (what the rules pass around).
    `config` has its data paths resolved (`config.resolve_data_paths`): released weights lie
    in the weights cache unless the entry names a `checkpoint`."""
    if "run" in entry:
        run = config["runs"][entry["run"]]
        model, seed = run["model"], run["train"]["seed"]
        # a run of the initialisation ablation is the hybrid "<arch>+<entry>" (image_encoders):
        # its export loads into that architecture, registered when it is first named
        arch = hybrid_arch(model["arch"], model["image_init"]) if model.get("image_init") else model["arch"]
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
            if model.get("image_init"):  # built as the run starts: text from `pretrained`, trunk from this
                spec |= {
                    "text_arch": model["arch"],
                    "image_init": model["image_init"],
                    "image_checkpoint": model.get("image_checkpoint"),
                }
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
    if "zoo" in entry:
        return resolve_zoo(name, entry, config)
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


def resolve_zoo(name: str, entry: dict[str, Any], config: dict) -> dict[str, Any]:
    """A zoo entry as an evaluation model: its load recipe, where its weights lie in the
    weights cache once `fetch_weights` has them, and its prompt protocol when it has one."""
    model = zoo_entry(load_zoo(config["zoo"]), entry["zoo"], f"evaluation.models.{name}.zoo")
    cache = config["data"]["weights"]
    weights, fmt = model["weights"], model["format"]
    hf = weights.get("hf") or {}
    tokenizer_repo = tokenizer_repo_of(model)
    file = weights_file(cache, model)
    spec = {
        "name": name,
        "zoo": entry["zoo"],
        "family": model["family"],
        "format": fmt,
        "arch": model["arch"],
        "pretrained": weights["tag"] if fmt == "openai_tag" else None,
        "checkpoint": str(file) if file else None,
        # a zip release (SkyCLIP): the archive at the URL and the checkpoint member in it
        "archive": str(url_file(cache, weights["url"])) if weights.get("member") else None,
        "member": weights.get("member"),
        "repo_dir": str(repo_dir(cache, hf["repo"], hf.get("revision", "main"))) if fmt not in FILE_LIKE else None,
        "tokenizer": model["tokenizer"],
        "tokenizer_dir": str(repo_dir(cache, tokenizer_repo, "main")) if tokenizer_repo else None,
        "model_class": model.get("model_class"),
        "image_size": model["image_size"],
        "context_length": model.get("context_length"),
        "text_attention_mask": model.get("text_attention_mask", True),
        "long_clip_positions": model.get("long_clip_positions", "fold"),
        "quick_gelu": model["quick_gelu"],
        "seed": 0,
        "url": weights.get("url") or (f"https://huggingface.co/{hf['repo']}" if hf else None),
        "trust_checkpoint": entry.get("trust_checkpoint", _DEFAULTS["trust_checkpoint"]),
        "weight_sources": [dataclasses.asdict(s) for s in zoo_sources(model)],
        "origin": f"zoo {entry['zoo']}",
    }
    if tokenizer_repo and tokenizer_repo == hf.get("repo") and spec["repo_dir"]:
        spec["tokenizer_dir"] = spec["repo_dir"]  # the tokenizer files come with the weights' repo
    for key in ("templates", "protocol", "paper"):
        if key in entry:
            spec[key] = entry[key]
    if "paper" not in entry and (row := paper_row(model, entry, config)):
        spec["paper"] = row
    return spec


def paper_row(model: dict[str, Any], entry: dict[str, Any], config: dict) -> str | None:
    """The paper row of a zoo entry (`paper_row`) when the evaluation model is scored with that
    row's zero-shot prompts; under other prompts (a leaderboard's ensemble) it is not that row."""
    row = model.get("paper_row")
    if not row:
        return None
    paper = zoo_protocols(config["zoo"])[row["protocol"]].get("zeroshot", {}).get("prompts")
    scored = entry.get("templates") or (config.get("evaluation") or {}).get("templates") or DEFAULT_TEMPLATES
    return row["row"] if list(scored) == paper else None


def image_sets(specs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """{evaluation model: the name its image features are cached under}. A zoo model's prompt
    protocols differ only in their texts, so every evaluation model of one zoo entry reads the
    images encoded once under the entry's name; any other model has its own. Two models that
    would share a name but encode images differently are an error."""
    first: dict[str, str] = {}
    for name, spec in specs.items():
        key = spec.get("zoo") or name
        other = first.setdefault(key, name)
        if image_spec(specs[other]) != image_spec(spec):
            raise ConfigError(
                f"evaluation models {other!r} and {name!r} both cache image features as {key!r} "
                "but are different models: rename the one that is not the zoo entry"
            )
    return {name: spec.get("zoo") or name for name, spec in specs.items()}


def models_with_own_images(image_set: dict[str, str]) -> list[str]:
    """The evaluation models whose image set (`image_sets`) is theirs alone and bears their name:
    one job encodes their images and texts. A shared image set is encoded once, and each of its
    models' texts apart."""
    members = Counter(image_set.values())
    return sorted(name for name, key in image_set.items() if key == name and members[key] == 1)


def image_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """What decides a model's image features: its spec without the text side and the report's keys."""
    return {k: v for k, v in spec.items() if k not in TEXT_ONLY}


FILE_LIKE = ("state_dict", "open_clip_train", "itra", "safetensors", "openai_tag")


def leaderboard_models(config: dict) -> dict[str, dict[str, Any]]:
    """`evaluation.leaderboard` as evaluation-model entries: `<zoo name>.<protocol>` for every
    chosen zoo entry and protocol (none without a leaderboard)."""
    board = config["evaluation"].get("leaderboard")
    if not board:
        return {}
    zoo = load_zoo(config["zoo"])
    chosen = board["models"] if board.get("models") is not None else sorted(zoo)
    for i, model in enumerate(chosen):
        zoo_entry(zoo, model, f"evaluation.leaderboard.models.{i}")
    return {
        f"{model}.{protocol}": {"zoo": model, "templates": list(templates), "protocol": protocol}
        for model in chosen
        for protocol, templates in board["protocols"].items()
    }
