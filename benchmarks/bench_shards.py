"""Shard writing against what an open_clip user writes: a single-process loop over the images
that opens each with PIL, shrinks it (`Image.thumbnail`, PIL's default bicubic), encodes a
JPEG and writes `jpg`/`txt`/`json` samples with `webdataset.ShardWriter`; and the scaling of
`remoteclip.shards.build.build_shards` from 1 to 2 worker processes.

Both write every input image once, with the same JPEG quality and samples per shard. Asserted
equal: the set of images (each sample's json names its image), each image's five captions and
that the one `txt` caption is one of them (ours is a seeded random pick, the loop takes the
first), the decoded image sizes, and the pixels within JPEG tolerance (the two resamplers
differ: ours `resize(..., BICUBIC, reducing_gap=3.0)`, thumbnail's reducing_gap 2.0). Ours
also writes each tar's member index and record, byte-identical tars and a manifest with
per-shard sha256, which the loop does not; its workers encode whole chunks (one tar each), so
2 workers help once there are at least 2 chunks.

    .venv/bin/python benchmarks/bench_shards.py [--images 1500] [--size 256] [--max-side 192]
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from benchlib import Row, add_json_flag, report, timed
from remoteclip.shards import ShardSettings
from remoteclip.shards.build import build_shards

# largest mean absolute difference per pixel and channel (0-255) between the two JPEGs of one
# image; JPEG at q95 with a different resampler stays well below it, a wrong or shifted image not
PIXEL_TOLERANCE = 3.0


def make_inputs(root: Path, n: int, size: int) -> list[dict]:
    """n PNG files (50 rendered scenes in four rotations, repeated) with five captions each."""
    from remoteclip.synthetic.scenes import SCENES, render_scene

    kinds = list(SCENES)
    base = [
        Image.fromarray(render_scene(np.random.default_rng(i), kinds[i % len(kinds)], size).image) for i in range(50)
    ]
    rows = []
    for i in range(n):
        path = root / f"{i:06d}.png"
        base[i % 50].rotate(90 * (i // 50 % 4)).save(path)
        rows.append(
            {"image": str(path), "captions": [f"caption {i} number {k} ." for k in range(5)], "source": "bench"}
        )
    return rows


def webdataset_loop(rows: list[dict], out: Path, max_side: int, quality: int, per_shard: int) -> None:
    """The plain loop: open, convert, thumbnail, encode, write, one image after another."""
    import webdataset as wds

    out.mkdir(parents=True, exist_ok=True)
    with wds.ShardWriter(str(out / "shard-%06d.tar"), maxcount=per_shard, verbose=0) as sink:
        for i, row in enumerate(rows):
            image = Image.open(row["image"]).convert("RGB")
            original = image.size
            image.thumbnail((max_side, max_side))
            buf = io.BytesIO()
            image.save(buf, "JPEG", quality=quality)
            meta = {"image": row["image"], "captions": row["captions"], "original_size": list(original)}
            sink.write({"__key__": f"{i:09d}", "jpg": buf.getvalue(), "txt": row["captions"][0], "json": meta})


def read_samples(folder: Path) -> dict[str, dict]:
    """{image path: {"captions", "txt", "pixels"}} of every sample in the folder's tars."""
    members: dict[str, dict] = {}
    for tar_path in sorted(folder.glob("shard-*.tar")):
        with tarfile.open(tar_path) as tar:
            for member in tar.getmembers():
                key, ext = member.name.split(".", 1)
                members.setdefault(f"{tar_path.name}/{key}", {})[ext] = tar.extractfile(member).read()
    samples = {}
    for parts in members.values():
        meta = json.loads(parts["json"])
        pixels = np.asarray(Image.open(io.BytesIO(parts["jpg"])).convert("RGB"), np.int16)
        samples[meta["image"]] = {"captions": meta["captions"], "txt": parts["txt"].decode(), "pixels": pixels}
    return samples


def same_samples(ours: dict[str, dict], theirs: dict[str, dict], tolerance: float = PIXEL_TOLERANCE) -> list[str]:
    """Why the two shard sets differ (empty when they hold the same samples)."""
    problems = []
    if ours.keys() != theirs.keys():
        problems.append(
            f"images only in ours {len(ours.keys() - theirs.keys())}, only in theirs {len(theirs.keys() - ours.keys())}"
        )
    for image in sorted(ours.keys() & theirs.keys()):
        a, b = ours[image], theirs[image]
        if a["captions"] != b["captions"] or a["txt"] not in a["captions"] or b["txt"] not in b["captions"]:
            problems.append(f"{image}: captions differ")
        elif a["pixels"].shape != b["pixels"].shape:
            problems.append(f"{image}: size {a['pixels'].shape} vs {b['pixels'].shape}")
        elif np.abs(a["pixels"] - b["pixels"]).mean() > tolerance:
            problems.append(f"{image}: pixels differ by {np.abs(a['pixels'] - b['pixels']).mean():.1f} on average")
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=1500)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--max-side", type=int, default=192)
    ap.add_argument("--per-shard", type=int, default=500)
    add_json_flag(ap)
    args = ap.parse_args()
    import webdataset

    quality = ShardSettings().jpeg_quality
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_inputs(Path(tmp), args.images, args.size)
        t_loop, _ = timed(webdataset_loop, inputs, Path(tmp) / "loop", args.max_side, quality, args.per_shard)
        theirs = read_samples(Path(tmp) / "loop")
        seconds = {}
        for workers in (1, 2):
            settings = ShardSettings(
                max_side=args.max_side, samples_per_shard=args.per_shard, jpeg_quality=quality, workers=workers
            )
            seconds[workers], _ = timed(build_shards, inputs, Path(tmp) / f"ours{workers}", settings)
            problems = same_samples(read_samples(Path(tmp) / f"ours{workers}"), theirs)
            assert not problems, f"{len(problems)} samples differ, e.g. {problems[:3]}"
        for workers in (1, 2):
            rows.append(
                Row(
                    f"shards, {args.images} {args.size} px PNG -> {args.max_side} px JPEG q{quality}, ours with {workers} "
                    f"worker(s)",
                    seconds[workers],
                    t_loop,
                    f"webdataset {webdataset.__version__} ShardWriter + PIL thumbnail loop (1 process)",
                    f"same {len(theirs)} images, captions, sizes; pixels within {PIXEL_TOLERANCE:g}/255",
                    f"ours 1 -> 2 workers: x{seconds[1] / seconds[2]:.2f}" if workers == 2 else "",
                )
            )
    report(rows, args.json)


if __name__ == "__main__":
    main()
