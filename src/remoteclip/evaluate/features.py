"""Image and text embeddings, computed once per (model, benchmark) and cached as .npz, so
zero-shot, linear probe, k-NN and few-shot all read the same features."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..imageio import load_rgb

log = logging.getLogger(__name__)


class Images(Dataset):
    def __init__(self, items: list[tuple[str, list[int] | None]], transform):
        self.items, self.transform = items, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        path, crop = self.items[i]
        image = load_rgb(path)  # FormatError names the file
        if crop:
            x, y, w, h = crop
            image = image.crop((x, y, x + w, y + h))
        return self.transform(image)


def _autocast(device):
    """bf16/fp16 autocast on CUDA, none on CPU."""
    return torch.autocast("cuda") if torch.device(device).type == "cuda" else torch.autocast("cpu", enabled=False)


def _normalised(x: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(x.float(), dim=-1).cpu().numpy().astype(np.float32)


@torch.no_grad()
def image_features(model, transform, items, device, batch_size: int = 128, workers: int = 2,
                   desc: str = "images") -> np.ndarray:
    loader = DataLoader(Images(items, transform), batch_size=batch_size, num_workers=workers,
                        pin_memory=torch.device(device).type == "cuda")
    out = []
    for batch in tqdm(loader, desc=desc, unit="batch"):
        with _autocast(device):
            out.append(_normalised(model.encode_image(batch.to(device))))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


@torch.no_grad()
def text_features(model, tokenizer, texts: list[str], device, batch_size: int = 256, desc: str = "texts") -> np.ndarray:
    out = []
    for start in tqdm(range(0, len(texts), batch_size), desc=desc, unit="batch"):
        tokens = tokenizer(texts[start:start + batch_size]).to(device)
        with _autocast(device):
            out.append(_normalised(model.encode_text(tokens)))
    return np.concatenate(out)


def class_embeddings(model, tokenizer, classnames: list[str], templates: list[str], device) -> np.ndarray:
    """One embedding per class: the re-normalised mean of its prompts (CLIP's ensembling)."""
    prompts = [t.format(c) for c in classnames for t in templates]
    feats = text_features(model, tokenizer, prompts, device, desc="prompts").reshape(len(classnames), len(templates), -1)
    mean = feats.mean(axis=1)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


def items_for(split: dict[str, Any]) -> tuple[list[tuple[str, Any]], dict[str, np.ndarray]]:
    """The images a benchmark scores, and the arrays that describe them."""
    root = split["root"]
    if split["group"] == "CLS":
        rows = [(f, label, 0) for f, label in split["train"]] + [(f, label, 1) for f, label in split["test"]]
        items = [(f"{root}/{f}", None) for f, _, _ in rows]
        return items, {"files": np.array([f for f, _, _ in rows]), "labels": np.array([l for _, l, _ in rows]),
                       "is_test": np.array([t for _, _, t in rows], bool)}
    if split["group"] == "RET":
        return [(f"{root}/{f}", None) for f in split["images"]], {"files": np.array(split["images"])}
    samples = split["samples"]
    return ([(f"{root}/{s['image']}", s.get("crop")) for s in samples],
            {"files": np.array([s["image"] for s in samples]), "counts": np.array([s["count"] for s in samples]),
             "categories": np.array([s["category"] for s in samples])})
