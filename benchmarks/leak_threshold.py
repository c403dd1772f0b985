"""Measurement behind the default `dedup.leak_threshold`: how many planted copies of test images
a pHash threshold finds, against how many distinct images of the same scene class it wrongly
flags (not a speed benchmark).

Test images: synthetic aerial scenes of every demo scene type (several per type, 256 px, the
size of the real classification benchmarks). Each gets planted copies as a leak would look in
a training source: rescaled (x0.5, x0.75, x1.5, back and forth), JPEG re-encoded (q 75, q 90),
re-encoded as PNG after a JPEG round trip, border-cropped (2 %, 5 %), brightened (+3 %), and a
rescale plus JPEG. False hits: every pair of distinct scenes of the same type (the hardest
negatives: same layout grammar, palette and objects). Distances of imagehash's pHash are even
(it sets exactly 32 of 64 bits), so only even thresholds + 1 matter; "found at t" means
distance < t, the dedup rule.

    .venv/bin/python benchmarks/leak_threshold.py [--per-type 24] [--size 256] [--out benchmarks/results/leak.md]
"""

from __future__ import annotations

import argparse
import io
import itertools
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from remoteclip.dedup import phash
from remoteclip.synthetic.scenes import SCENES, render_scene

THRESHOLDS = (2, 4, 6, 8, 10, 12, 14, 16, 18, 20)


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _rescale(image: Image.Image, factor: float) -> Image.Image:
    w, h = image.size
    return image.resize((round(w * factor), round(h * factor)), Image.Resampling.BICUBIC)


def _crop(image: Image.Image, fraction: float) -> Image.Image:
    w, h = image.size
    dx, dy = round(w * fraction), round(h * fraction)
    return image.crop((dx, dy, w - dx, h - dy))


EDITS = {
    "rescaled x0.5": lambda im: _rescale(im, 0.5),
    "rescaled x0.75": lambda im: _rescale(im, 0.75),
    "rescaled x1.5": lambda im: _rescale(im, 1.5),
    "jpeg q75": lambda im: _jpeg(im, 75),
    "jpeg q90": lambda im: _jpeg(im, 90),
    "rescaled x0.5 + jpeg q75": lambda im: _jpeg(_rescale(im, 0.5), 75),
    "cropped 2 %": lambda im: _crop(im, 0.02),
    "cropped 5 %": lambda im: _crop(im, 0.05),
    "brightened 3 %": lambda im: ImageEnhance.Brightness(im).enhance(1.03),
}


def distance(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def measure(per_type: int, size: int) -> dict:
    kinds = list(SCENES)
    originals = {
        (kind, i): Image.fromarray(render_scene(np.random.default_rng([k, i, 7]), kind, size).image)
        for k, kind in enumerate(kinds)
        for i in range(per_type)
    }
    hashes = {key: phash(im) for key, im in originals.items()}
    copies = defaultdict(list)  # edit -> distances to the original
    for key, image in originals.items():
        for edit, apply in EDITS.items():
            copies[edit].append(distance(hashes[key], phash(apply(image))))
    negatives = [
        distance(hashes[a], hashes[b])
        for kind in kinds
        for a, b in itertools.combinations([(kind, i) for i in range(per_type)], 2)
    ]
    others = [distance(hashes[a], hashes[b]) for a, b in itertools.combinations(hashes, 2) if a[0] != b[0]]
    return {
        "copies": {e: np.array(d) for e, d in copies.items()},
        "negatives": np.array(negatives),
        "others": np.array(others),
        "images": len(originals),
        "types": len(kinds),
    }


def table(result: dict) -> str:
    header = ["threshold (found: distance <)"] + [str(t) for t in THRESHOLDS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    every = np.concatenate(list(result["copies"].values()))
    for edit, d in list(result["copies"].items()) + [("**all planted copies**", every)]:
        lines.append(f"| {edit} | " + " | ".join(f"{100 * (d < t).mean():.0f}" for t in THRESHOLDS) + " |")
    neg = result["negatives"]
    lines.append(
        "| **false hits: distinct same-type pairs (%)** | "
        + " | ".join(f"{100 * (neg < t).mean():.2f}" for t in THRESHOLDS)
        + " |"
    )
    lines.append(
        "| false hits: pairs of different types (%) | "
        + " | ".join(f"{100 * (result['others'] < t).mean():.3f}" for t in THRESHOLDS)
        + " |"
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-type", type=int, default=24)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    result = measure(args.per_type, args.size)
    neg = result["negatives"]
    text = (
        f"pHash leak threshold: {result['images']} synthetic {args.size} px test images "
        f"({result['types']} scene types x {args.per_type}), {len(EDITS)} planted copies each; "
        f"{len(neg)} distinct same-type pairs (smallest distance {neg.min()}, 1st percentile "
        f"{np.percentile(neg, 1):.0f}, median {np.median(neg):.0f}) and {len(result['others'])} pairs of "
        f"different types (smallest {result['others'].min()}). Cells: % found.\n\n" + table(result)
    )
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
