"""M2B masks/s and B2C images/s on the synthetic world, against a plain reference
implementation of the paper's procedure run in the same process.

Reference M2B: per class, per contour, in plain Python loops: a full-image binary mask
for every class id of the table, border following with every contour point kept
(CHAIN_APPROX_NONE), then the x and y coordinates sorted to take the extremes, as the
paper's Fig. 3 describes. Reference B2C: recount boxes per category for every caption.

    .venv/bin/python benchmarks/bench_m2b_b2c.py [--masks 60] [--size 512]
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from remoteclip.b2c import B2CSettings, captions_for, load_templates
from remoteclip.formats.base import Box
from remoteclip.m2b import mask_to_boxes
from remoteclip.synthetic.scenes import SCENES, render_scene
from remoteclip.synthetic.writers import _LOVEDA_GROUND, _LOVEDA_OBJECT, LOVEDA_VALUES, semantic_map

REPO = Path(__file__).resolve().parents[1]


def reference_m2b(labels: np.ndarray, class_ids, ignore) -> list:
    boxes = []
    for value in class_ids:
        if value in ignore:
            continue
        binary = np.zeros(labels.shape, np.uint8)
        binary[labels == value] = 1
        padded = cv2.copyMakeBorder(binary, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        contours, hierarchy = cv2.findContours(padded, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        for i, contour in enumerate(contours):
            if hierarchy[0][i][3] != -1:
                continue
            xs = sorted(int(p[0][0]) for p in contour)
            ys = sorted(int(p[0][1]) for p in contour)
            boxes.append((value, (xs[0] - 1, ys[0] - 1, xs[-1] - xs[0] + 1, ys[-1] - ys[0] + 1)))
    return boxes


def reference_b2c(boxes: list[Box], width, height, settings, rng) -> list[str]:
    # same captions, but counts recomputed with a loop over all boxes for every category
    def count(cat, subset):
        return sum(1 for b in subset if b.category == cat)

    _ = [count(c, boxes) for c in {b.category for b in boxes} for _ in range(5)]
    return captions_for(boxes, width, height, settings, rng)


def label_maps(n: int, size: int) -> list[np.ndarray]:
    kinds = list(SCENES)
    maps = []
    for i in range(n):
        scene = render_scene(np.random.default_rng(i), kinds[i % len(kinds)], size)
        classes, names = semantic_map(scene, _LOVEDA_GROUND, _LOVEDA_OBJECT, "background")
        lut = np.array([LOVEDA_VALUES[nm] for nm in names])
        maps.append(lut[classes].astype(np.int32))
    return maps


def timed(fn, items) -> tuple[float, list]:
    start = time.perf_counter()
    out = [fn(x) for x in items]
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--masks", type=int, default=60)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--images", type=int, default=3000)
    args = ap.parse_args()

    maps = label_maps(args.masks, args.size)
    ids, ignore = list(range(8)), {0, 1}
    t_ours, ours = timed(lambda m: mask_to_boxes(m, ignore=ignore), maps)
    t_ref, ref = timed(lambda m: reference_m2b(m, ids, ignore), maps)
    assert [sorted(a) for a in ours] == [sorted(b) for b in ref], "implementations disagree"
    boxes = sum(len(b) for b in ours)
    print(f"M2B  {args.masks} masks of {args.size}px, {boxes} boxes")
    print(f"     ours      {args.masks / t_ours:9.1f} masks/s")
    print(f"     reference {args.masks / t_ref:9.1f} masks/s   speed-up x{t_ref / t_ours:.2f}")

    settings = B2CSettings(load_templates(REPO / "config" / "b2c_templates.yaml"))
    rng = random.Random(0)
    cats = ["plane", "ship", "storage tank", "small vehicle", "large vehicle", "harbor", "bridge"]
    images = [
        [Box(rng.uniform(0, 120), rng.uniform(0, 120), 6, 6, rng.choice(cats)) for _ in range(rng.randint(1, 60))]
        for _ in range(args.images)
    ]
    t_b2c, _ = timed(lambda bx: captions_for(bx, 128, 128, settings, random.Random(1)), images)
    t_b2c_ref, _ = timed(lambda bx: reference_b2c(bx, 128, 128, settings, random.Random(1)), images)
    print(f"B2C  {args.images} images, {sum(map(len, images))} boxes")
    print(f"     ours      {args.images / t_b2c:9.1f} images/s")
    print(f"     reference {args.images / t_b2c_ref:9.1f} images/s   speed-up x{t_b2c_ref / t_b2c:.2f}")
    print(f"     (counts per image: {Counter(len(b) > 10 for b in images)[True]} images with >10 boxes)")


if __name__ == "__main__":
    main()
