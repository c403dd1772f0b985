"""Which towers of a CLIP model keep their pretrained weights (paper Table V, backbone
ablation: image and text tower each pretrained or randomly initialised).

A tower that is not kept is freshly initialised by open_clip's own scheme: a new model of the
same architecture is built with no weights while torch's generator is seeded with `seed` (so
each tower's `init_parameters`, e.g. CLIP's normal(std=width**-0.5) attention and projection
weights and the ResNet's zero-initialised last BatchNorm of each block, draws from that seed),
and the tower's tensors are copied from it. The rest of torch's random state is left as it was.

Tower membership is by state-dict key: `visual.*` is the image tower, `logit_scale` and
`logit_bias` belong to neither, everything else (token and positional embeddings, the text
transformer, `ln_final`, `text_projection`, or `text.*` of a CustomTextCLIP) is the text tower.
The temperature (and bias) was learnt for the pretrained pair of towers, so it returns to its
initial value too whenever a tower is fresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

TOWERS = ("image", "text")
SHARED = ("logit_scale", "logit_bias")


class UnknownTower(ValueError):
    pass


def tower_of(key: str) -> str | None:
    """ "image", "text", or None for the shared temperature and bias."""
    if key in SHARED:
        return None
    return "image" if key.startswith("visual.") else "text"


def check_towers(towers: Iterable[str]) -> tuple[str, ...]:
    towers = tuple(towers)
    unknown = [t for t in towers if t not in TOWERS]
    if unknown:
        raise UnknownTower(f"model.pretrained_towers: unknown tower(s) {unknown}; known: {', '.join(TOWERS)}")
    return towers


def fresh_model(build: Callable[[], torch.nn.Module], seed: int) -> torch.nn.Module:
    """`build()` (a model without weights) with torch's generator seeded, the caller's random state kept."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def reinitialise(
    model: torch.nn.Module, kept: Iterable[str], build: Callable[[], torch.nn.Module], seed: int
) -> list[str]:
    """Replace the towers not in `kept` (and, if any is replaced, the temperature and bias) by
    those of `fresh_model(build, seed)`; returns the replaced keys. `model` is changed in place."""
    kept = check_towers(kept)
    if set(kept) == set(TOWERS):
        return []
    fresh = fresh_model(build, seed).state_dict()
    state = model.state_dict()
    replaced = [k for k in state if k in fresh and tower_of(k) not in kept]
    missing = [k for k in state if k not in fresh and tower_of(k) not in kept]
    if missing:
        raise RuntimeError(f"fresh initialisation lacks {len(missing)} tensors of the model, e.g. {missing[:3]}")
    with torch.no_grad():
        for key in replaced:
            state[key].copy_(fresh[key])
    return replaced
