"""Image and text embeddings of a benchmark, cached as .npz, so zero-shot, linear probe, k-NN,
few-shot, retrieval and counting all read the same features: the images once per model (every
prompt protocol of a zoo model reads the same), the texts once per evaluation model.

Images: `features` (L2-normalised `encode_image` output, float32, as CLIP_benchmark and the
official retrieval.py normalise it) and `norms` (the raw embedding's L2 norm, so the paper's
linear probe can train on the raw output: features * norms). Each image is the region a sample
names (`crop`, `pad`; listed by `scored`) passed through the model's validation transform.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..imageio import load_rgb
from ..schema import defaults
from .counting import MAX_COUNT, count_captions
from .scored import Region, scored_items

log = logging.getLogger(__name__)
_DEFAULTS = defaults("evaluation")  # batch_size, workers


class Images(Dataset):
    def __init__(self, items: list[Region], transform):
        self.items, self.transform = items, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        with one_thread():
            return self.transform(region(*self.items[i]))


@contextlib.contextmanager
def one_thread():
    """torch on one thread for a block of tiny tensor operations.

    A transform's per-image tensor steps (to_tensor, normalize) are a few hundred kilobytes:
    split across OpenMP threads they cost more in synchronisation than they compute (measured
    x10 on a busy 2-core machine: 23 ms per image on 2 threads, 2 ms on one). Loader worker
    processes already run on one thread; this is for the main process (workers=0), whose
    threads the model's forward pass then gets back.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def region(path: str, crop: list[int] | None = None, pad: bool = False) -> Image.Image:
    """The pixels a sample scores: the file, cropped to `crop`, padded to a centred square."""
    image = load_rgb(path)  # FormatError names the file
    if crop:
        x, y, w, h = crop
        image = image.crop((x, y, x + w, y + h))
    return pad_to_square(image) if pad else image


def pad_to_square(image: Image.Image) -> Image.Image:
    """Centred on a black square (open_clip's CenterCropOrPad fill), so no transform crops it."""
    side = max(image.size)
    if image.size == (side, side):
        return image
    canvas = Image.new(image.mode, (side, side))
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas


def _autocast(device):
    """bf16/fp16 autocast on CUDA, none on CPU."""
    return torch.autocast("cuda") if torch.device(device).type == "cuda" else torch.autocast("cpu", enabled=False)


def _normalised(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(L2-normalised rows, their norms before normalising), float32."""
    x = x.float()
    return (
        torch.nn.functional.normalize(x, dim=-1).cpu().numpy().astype(np.float32),
        torch.linalg.vector_norm(x, dim=-1).cpu().numpy().astype(np.float32),
    )


@torch.no_grad()
def image_features(
    model,
    transform,
    items,
    device,
    batch_size: int = _DEFAULTS["batch_size"],
    workers: int = _DEFAULTS["workers"],
    desc: str = "images",
) -> tuple[np.ndarray, np.ndarray]:
    """(L2-normalised `encode_image` embeddings, their raw norms): raw = features * norms[:, None].

    Every task but the paper's linear probe reads the normalised features; that probe (as
    ITRA's linear_eval) trains on the raw embedding, which the norms give back.
    """
    loader = DataLoader(
        Images(items, transform),
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=torch.device(device).type == "cuda",
    )
    feats, norms = [], []
    for batch in tqdm(loader, desc=desc, unit="batch"):
        with _autocast(device):
            f, n = _normalised(model.encode_image(batch.to(device)))
        feats.append(f)
        norms.append(n)
    if not feats:
        raise ValueError(f"{desc}: no images to embed")
    return np.concatenate(feats), np.concatenate(norms)


@torch.no_grad()
def text_features(model, tokenizer, texts: list[str], device, batch_size: int = 256, desc: str = "texts") -> np.ndarray:
    out = []
    for start in tqdm(range(0, len(texts), batch_size), desc=desc, unit="batch"):
        tokens = tokenizer(texts[start : start + batch_size]).to(device)
        with _autocast(device):
            out.append(_normalised(model.encode_text(tokens))[0])
    return np.concatenate(out)


def class_embeddings(model, tokenizer, classnames: list[str], templates: list[str], device) -> np.ndarray:
    """One embedding per class: the re-normalised mean of its prompts (CLIP's ensembling)."""
    prompts = [t.format(c) for c in classnames for t in templates]
    feats = text_features(model, tokenizer, prompts, device, desc="prompts").reshape(
        len(classnames), len(templates), -1
    )
    mean = feats.mean(axis=1)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


def embed(
    model,
    transform,
    tokenizer,
    split: dict[str, Any],
    templates: list[str],
    variants: list[str],
    device,
    batch_size: int = _DEFAULTS["batch_size"],
    workers: int = _DEFAULTS["workers"],
    desc: str = "images",
    test_only: bool = False,
) -> tuple[dict, dict]:
    """Everything the tasks of one benchmark read: (image arrays, text arrays), as the
    `features` rule caches them in <benchmark>.npz and <benchmark>.text.npz (`image_features` and
    `text_features` one each, for a zoo model scored under several prompt protocols)."""
    images = embed_images(model, transform, split, device, batch_size, workers, desc, test_only)
    return images, embed_texts(model, tokenizer, split, templates, variants, device)


def embed_images(
    model,
    transform,
    split: dict[str, Any],
    device,
    batch_size: int = _DEFAULTS["batch_size"],
    workers: int = _DEFAULTS["workers"],
    desc: str = "images",
    test_only: bool = False,
) -> dict:
    """The image arrays of a benchmark (<benchmark>.npz): the features, their norms and what
    the split says of each scored image; with `test_only` a classification benchmark's test
    images alone (when zero-shot is its only task: `registry.reads_train_images`)."""
    items, arrays = scored_items(split, test_only)
    feats, norms = image_features(model, transform, items, device, batch_size, workers, desc=desc)
    return {"features": feats, "norms": norms, **arrays}


def embed_texts(model, tokenizer, split: dict[str, Any], templates: list[str], variants: list[str], device) -> dict:
    """The text arrays of a benchmark (<benchmark>.text.npz): the class prompts' embeddings
    (CLS), the captions' (RET) or the counting captions' (COUNT)."""
    if split["group"] == "CLS":
        return {
            "templates": np.array(templates),
            "class_features": class_embeddings(model, tokenizer, split["classnames"], templates, device),
        }
    if split["group"] == "RET":
        return {"caption_features": text_features(model, tokenizer, split["captions"], device)}
    classes = sorted({s["category"] for s in split["samples"]})
    captions = [c for cls in classes for v in variants for c in count_captions(cls, v)]
    caption_features = text_features(model, tokenizer, captions, device)
    return {
        "caption_features": caption_features.reshape(len(classes), len(variants), MAX_COUNT, -1),
        "classes": np.array(classes),
        "variants": np.array(variants),
    }
