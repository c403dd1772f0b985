"""Loading a state dict into a model, strictly: every tensor the model has must be given, with
its shape, and nothing else. The one place this is done (the factory's checkpoints, a zoo
release, a Table V image trunk, a resume checkpoint), so a file that does not fit is described
the same way everywhere: the first keys missing, unexpected and of another shape."""

from __future__ import annotations

import torch

SHOWN = 5  # keys named in a mismatch error, per kind


class KeyMismatch(RuntimeError):
    """A state dict whose keys or shapes do not fit the model it is loaded into."""


def mismatches(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """What keeps `state` from loading strictly into `model`, one phrase per kind (none: it fits)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    return [
        f"{len(keys)} {kind}: {', '.join(keys[:SHOWN])}{' ...' if len(keys) > SHOWN else ''}"
        for kind, keys in (("missing", missing), ("unexpected", unexpected), ("with another shape", shapes))
        if keys
    ]


def load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Load every tensor of `state` into `model`, or fail naming `what` (the file and what it was
    loaded as) and the first missing, unexpected and misshapen keys."""
    problems = mismatches(model, state)
    if problems:
        raise KeyMismatch(f"{what}: the weights do not fit: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
