"""Models to score: our runs, their initialisations, open_clip pretrained tags, and any
checkpoint, including the released RemoteCLIP weights.

The released RemoteCLIP-*.pt files are plain open_clip state dicts fine-tuned from
OpenAI's CLIP, which uses QuickGELU; the official retrieval.py (which produced the
published numbers, with the open_clip of 2023) builds the model with pretrained="openai",
i.e. QuickGELU, then loads the file. The README's snippet builds a GELU model instead;
both load (same keys) but give different embeddings. QuickGELU is therefore our default
for them (`quick_gelu: false` selects the README's path).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import open_clip
import torch

from ..models import KeyMismatch, create, register_model_configs, uses_quick_gelu
from ..models.loaders import load_zoo_model
from ..weights.cache import open_clip_cache

log = logging.getLogger(__name__)


class MissingCheckpoint(FileNotFoundError):
    pass


def load(spec: dict[str, Any], device: str | torch.device = "cpu", weights_cache: str | Path | None = None):
    """(model in eval mode, validation transform, tokenizer) for a resolved spec
    (evaluate.registry.resolve), built by the factory as training builds it; pretrained tags and
    hf-hub: models are read from `weights_cache` (remoteclip.weights.cache). A zoo entry is
    loaded by its release format (models.loaders)."""
    if spec.get("zoo"):
        return load_zoo_model(spec, device, weights_cache)
    register_model_configs()
    if spec.get("checkpoint"):
        path = Path(spec["checkpoint"])
        register_model_configs(path.parent)  # a custom architecture travels with its weights
        if not path.is_file():
            where = f"; get it from {spec['url']}" if spec.get("url") else ""
            raise MissingCheckpoint(
                f"model {spec['name']}: checkpoint {path} not found. Put the file at {path.resolve()}{where}"
            )
    quick = spec.get("quick_gelu")
    if quick is None:  # as the weights were trained: OpenAI's (and what started from them) use QuickGELU
        quick = uses_quick_gelu(spec["arch"], spec.get("pretrained") or spec.get("trained_from"))
    cache_dir = open_clip_cache(weights_cache) if weights_cache else None
    hybrid = spec.get("image_init")  # the initialisation of a Table V init run: built as training starts it
    torch.manual_seed(spec.get("seed") or 0)  # a random initialisation is the run's own
    try:
        model, _, preprocess = create(
            spec["text_arch"] if hybrid else spec["arch"],
            spec.get("pretrained"),
            "cpu",
            bool(quick),
            trust_checkpoint=bool(spec.get("trust_checkpoint")),
            cache_dir=cache_dir,
            pretrained_towers=spec.get("pretrained_towers") or ("image", "text"),
            seed=spec.get("seed") or 0,
            image_init=hybrid,
            image_checkpoint=spec.get("image_checkpoint"),
            weights_cache=weights_cache,
            checkpoint=spec.get("checkpoint"),
        )
    except KeyMismatch as exc:
        raise KeyMismatch(f"model {spec['name']}: {exc}") from None
    model.to(device).eval()  # open_clip 3 does not switch to eval mode itself (RN50 BatchNorm)
    return model, preprocess, open_clip.get_tokenizer(spec["arch"], cache_dir=cache_dir)
