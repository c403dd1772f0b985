"""Shard writing: images/s with the process pool against a single-process PIL loop on the
same input, and the scaling from 1 to 2 workers.

    .venv/bin/python benchmarks/bench_shards.py [--images 1500] [--size 256]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from remoteclip.shards import ShardSettings, build_shards
from remoteclip.synthetic.scenes import SCENES, render_scene


def make_inputs(root: Path, n: int, size: int) -> list[dict]:
    kinds = list(SCENES)
    base = [
        Image.fromarray(render_scene(np.random.default_rng(i), kinds[i % len(kinds)], size).image) for i in range(50)
    ]
    rows = []
    for i in range(n):
        path = root / f"{i:06d}.png"
        base[i % 50].rotate(90 * (i // 50 % 4)).save(path)
        rows.append({"image": str(path), "captions": [f"caption {i} ."] * 5, "source": "bench"})
    return rows


def plain_loop(rows, max_side, quality) -> None:
    """The baseline: open, convert, resize and encode one image after another."""
    for row in rows:
        im = Image.open(row["image"]).convert("RGB")
        im.thumbnail((max_side, max_side))
        im.save(io.BytesIO(), "JPEG", quality=quality)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1500)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--max-side", type=int, default=192)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = make_inputs(Path(tmp), args.images, args.size)
        start = time.perf_counter()
        plain_loop(rows, args.max_side, 95)
        t_plain = time.perf_counter() - start
        print(f"single-process PIL loop  {args.images / t_plain:8.1f} img/s (encode only, no tar)")
        rates = {}
        for workers in (1, 2):
            start = time.perf_counter()
            build_shards(rows, Path(tmp) / f"out{workers}", ShardSettings(max_side=args.max_side, workers=workers))
            rates[workers] = args.images / (time.perf_counter() - start)
            print(
                f"build_shards workers={workers}  {rates[workers]:8.1f} img/s "
                f"(x{rates[workers] * t_plain / args.images:.2f} of the plain loop, tars and hashes included)"
            )
        print(f"scaling 1 -> 2 workers: x{rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
