"""Super-resolution before the shards (paper Table V, preprocessing ablation): every source
image (each crop of it) is upscaled by a model before `shards` resizes it to `max_side` and
encodes it, so the run trains on the super-resolved images.

The paper reports the row ("Super-resolution", 37.98 / 47.18) but does not name the model,
its scale or its training (paper.md §6.7), so the model is the user's: a program that maps a
float tensor (1, 3, H, W) in [0, 1] to (1, 3, sH, sW), saved by `torch.export.save` (a `.pt2`
file, with H and W exported as dynamic dimensions) or as TorchScript (`torch.jit.save`, which
torch now deprecates). Both hold a graph, not pickled Python, so a model is loaded without the
code-execution risk of `torch.load(weights_only=False)`. A run that asks for the step
without a model stops here with a message saying so: skipping the step silently would label
plain images as super-resolved.

Configured per run (`runs.<run>.super_resolution: {model, device}`); rule `build_shards`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


class SuperResolutionError(ValueError):
    """A run asks for super-resolution without a usable model."""


def check(spec: dict[str, Any] | None, run: str = "") -> None:
    """Refuse a super-resolution step that has no model or whose file is missing."""
    if spec is None:
        return
    where = f"runs.{run}.super_resolution" if run else "super_resolution"
    model = spec.get("model")
    if not model:
        raise SuperResolutionError(
            f"{where}.model is not set: this run asks for super-resolution before its shards, but no model "
            "is configured. The paper (Table V) does not name the model it used; give a program mapping a "
            "float (1, 3, H, W) image in [0, 1] to (1, 3, sH, sW) (torch.export.save, .pt2; or TorchScript), or remove "
            f"{where} to train on the images as they are"
        )
    if not Path(model).is_file():
        raise SuperResolutionError(f"{where}.model: {model} does not exist")


@functools.lru_cache(maxsize=2)
def _model(path: str, device: str):
    import torch  # only a super-resolution run needs torch here

    if path.endswith(".pt2"):
        return torch.export.load(path).module().to(device)
    return torch.jit.load(path, map_location=device).eval()


def _device(name: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


def upscale(image: Image.Image, spec: dict[str, Any]) -> Image.Image:
    """`image` (RGB) through the configured model; read once per process."""
    import torch

    device = _device(spec.get("device", "auto"))
    model = _model(str(spec["model"]), device)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)[None].to(device)
    with torch.no_grad():
        y = model(x)
    if y.ndim != 4 or y.shape[:2] != (1, 3):
        raise SuperResolutionError(
            f"super-resolution model {spec['model']}: returned shape {tuple(y.shape)}, expected (1, 3, sH, sW)"
        )
    out = (y[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(out, "RGB")
