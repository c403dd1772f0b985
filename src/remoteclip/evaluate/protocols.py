"""The protocol of a number, in one vocabulary for ours and the authors' (config/models.yaml
`protocols`): per task, the conditions that decide it (split, prompts, probe recipe, k-NN
settings). The leaderboard sets ours minus theirs only where the two are equal. Read while
Snakemake builds the DAG: no torch."""

from __future__ import annotations

from typing import Any

from ..zoo import load_zoo, zoo_protocols
from .registry import DEFAULT_TEMPLATES


def class_split(train_fraction: float) -> str:
    """The name of our classification split (evaluate.sets: per class, sorted by file name,
    the first `train_fraction` train, the rest test): sorted-80-20 for 0.8."""
    train = round(100 * train_fraction)
    return f"sorted-{train}-{100 - train}"


def measured(templates: list[str], evaluation: dict[str, Any], train_fraction: float) -> dict[str, dict]:
    """Per task, the conditions our numbers were measured under with these zero-shot prompts
    and this evaluation config (few-shot trains the linear probe's recipe)."""
    split, probe = class_split(train_fraction), evaluation["linear_probe"]["protocol"]
    return {
        "zeroshot": {"split": split, "prompts": list(templates)},
        "linear_probe": {"split": split, "probe": probe},
        "fewshot": {"split": split, "probe": probe},
        "knn": {"split": split, "k": evaluation["knn"]["k"], "temperature": evaluation["knn"]["temperature"]},
        "retrieval": {"split": "test"},  # each caption dataset's own test split (evaluate.sets)
    }


def zoo_published(config: dict, specs: dict[str, dict]) -> dict[str, dict]:
    """{evaluation model: {"zoo", "protocol", "published", "measured"}} for every zoo model
    scored (the report's leaderboard): the entry's numbers, each with its protocol's conditions
    for its task (`conditions`), and ours (`measured`, per task)."""
    zoo_specs = {name: spec for name, spec in specs.items() if spec.get("zoo")}
    if not zoo_specs:
        return {}
    zoo, protocols = load_zoo(config["zoo"]), zoo_protocols(config["zoo"])
    evaluation = config["evaluation"]
    return {
        name: {
            "zoo": spec["zoo"],
            "protocol": spec.get("protocol", ""),
            "published": [
                {**number, "conditions": protocols[number["protocol"]][number["task"]]}
                for number in zoo[spec["zoo"]]["published"]
            ],
            "measured": measured(
                spec.get("templates") or evaluation.get("templates") or DEFAULT_TEMPLATES,
                evaluation,
                config["splits"]["train_fraction"],
            ),
        }
        for name, spec in zoo_specs.items()
    }
