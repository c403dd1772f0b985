"""What each evaluated model is: its kind (pretrained, a run, a run's initialisation, the
released weights, a checkpoint), where it comes from, and the paper row it reproduces.
Reads the configured models (the report rule's params) or, for a model the config does not
describe, the model_spec in its result files."""

from __future__ import annotations

import re


def paper_name(entry: dict, spec: dict) -> str | None:
    """The paper row an evaluation model reproduces: `paper:` when given; a zoo model's is
    its entry's `paper_row` when scored with that row's prompts (decided by
    evaluate.registry.resolve_zoo, which reads the zoo); otherwise the released weights are
    "RemoteCLIP <arch>" and OpenAI's weights (a pretrained model, or the initialisation of a
    run that starts from them) are "CLIP <arch>"; our runs have none."""
    if entry.get("paper"):
        return entry["paper"]
    if spec.get("zoo"):
        return spec.get("paper")
    if "released" in entry:
        return f"RemoteCLIP {spec['arch']}"
    if spec.get("pretrained") == "openai" and not spec.get("checkpoint"):
        return f"CLIP {spec['arch']}"
    return None


def start_key(spec: dict) -> list:
    """What a model without a checkpoint is: architecture, weights and, for a random
    initialisation, its seed. A run's initialisation and a pretrained model that agree are
    the same network, so either serves as the run's "before" in the learning check."""
    towers = spec.get("pretrained_towers")  # fresh towers: seeded, like a random initialisation
    seed = spec.get("seed") if spec.get("pretrained") is None or towers is not None else None
    key = [spec["arch"], spec.get("pretrained"), bool(spec.get("quick_gelu")), seed]
    return key + [sorted(towers)] if towers is not None else key


def describe_models(entries: dict[str, dict], specs: dict[str, dict]) -> dict[str, dict]:
    """{name: kind, origin, arch, run, paper, start} for every evaluation model (JSON-able,
    the report rule's params). `specs` are the resolved models (evaluate.models.resolve)."""
    out = {}
    for name, entry in entries.items():
        spec = specs[name]
        if "run" in entry:
            kind = "init" if entry.get("init") else "run"
        elif "released" in entry:
            kind = "released"
        else:
            kind = "checkpoint" if spec.get("checkpoint") else "pretrained"
        out[name] = {
            "kind": kind,
            "origin": spec.get("origin") or kind,
            "arch": spec.get("arch"),
            "run": entry.get("run"),
            "paper": paper_name(entry, spec),
            "start": start_key(spec) if kind in ("init", "pretrained") else None,
        }
    return out


def infer_model(name: str, spec: dict) -> dict:
    """A model the config does not describe, from the model_spec in its result files."""
    origin = spec.get("origin") or ""
    m = re.fullmatch(r"(initialisation of )?run (\S+)", origin)
    if m:
        kind, run = ("init" if m.group(1) else "run"), m.group(2)
    else:
        kind, run = (
            (
                "released"
                if origin.startswith("released ")
                else "checkpoint"
                if spec.get("checkpoint")
                else "pretrained"
            ),
            None,
        )
    entry = {"released": origin.split(" ", 1)[1]} if kind == "released" else {}
    return {
        "kind": kind,
        "origin": origin or "unknown",
        "arch": spec.get("arch"),
        "run": run,
        "paper": paper_name(entry, spec) if spec else None,
        "start": start_key(spec) if kind in ("init", "pretrained") and spec.get("arch") else None,
    }
