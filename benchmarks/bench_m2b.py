"""Mask-to-Box against the usual ways to box connected components, on the same label maps
with the same boxes asserted; and Box-to-Caption's share of the caption pipeline (it has no
peer library, so no speed-up is claimed for it).

Peers (what a user would pick instead of `remoteclip.m2b.mask_to_boxes`):
- scipy: per class present, `ndimage.label(labels == c, structure=np.ones((3, 3)))` and
  `ndimage.find_objects`;
- scikit-image: one `measure.label(labels, connectivity=2, background=...)` over the whole map
  (it labels regions of equal value, so every class at once) and `measure.regionprops(...).bbox`.

Semantics: ours traces borders with OpenCV's `findContours`, whose foreground is 8-connected
(diagonal neighbours join), and keeps every outer border, so a component's box ignores its
holes and an island inside a hole is a component (a box) of its own. scipy's default structure
is 4-connected (a cross), which splits diagonally touching pixels into separate components:
the comparison passes the 3x3 structure, and the 4-connected count is reported beside it.
scikit-image's default connectivity for 2-D is already 8 (`connectivity=2`, passed explicitly).
With that, all three give the same set of (class, x, y, w, h) boxes, asserted on LoveDA-style
synthetic label maps and on a hand-made map with holes, islands in holes, diagonal touches,
border components and single pixels.

B2C: the demo's DET and SEG sources are synthesized at `--scale` of their demo size, parsed by
the workflow's own parse step (`convert.parse_dataset`, which runs M2B for masks) and captioned
by its B2C step (`convert.b2c_dataset`); the row gives B2C's share of that wall time.

    .venv/bin/python benchmarks/bench_m2b.py [--masks 60] [--size 512] [--scale 0.25]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchlib import REPO, Row, add_json_flag, report, timed, use_peer
from remoteclip.m2b import mask_to_boxes

SKIMAGE = ("scikit-image==0.26.0", "lazy_loader==0.6")
IGNORE = (0, 1)  # LoveDA's no-data and background, as the demo config ignores them

Box = tuple[int, tuple[int, int, int, int]]


def scipy_boxes(labels: np.ndarray, ignore=IGNORE, structure: np.ndarray | None = None) -> list[Box]:
    """Per class present: label its binary mask and take every component's slices."""
    from scipy import ndimage

    structure = np.ones((3, 3), bool) if structure is None else structure
    out = []
    for value in np.unique(labels):
        if value in ignore:
            continue
        components, _ = ndimage.label(labels == value, structure=structure)
        for rows, cols in ndimage.find_objects(components):
            out.append((int(value), (cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)))
    return out


def skimage_boxes(labels: np.ndarray, ignore=IGNORE) -> list[Box]:
    """One labelling of all classes at once (regions of equal value), then regionprops."""
    from skimage.measure import label, regionprops

    background = -1
    masked = np.where(np.isin(labels, ignore), background, labels)
    out = []
    for region in regionprops(label(masked, connectivity=2, background=background)):
        r0, c0, r1, c1 = region.bbox
        value = int(masked[tuple(region.coords[0])])
        out.append((value, (c0, r0, c1 - c0, r1 - r0)))
    return out


def ours(labels: np.ndarray, ignore=IGNORE) -> list[Box]:
    return mask_to_boxes(labels, ignore=ignore)


def same_boxes(a: list[list[Box]], b: list[list[Box]]) -> bool:
    """Equal multisets of (class, box) per map (order is each library's own)."""
    return len(a) == len(b) and all(sorted(x) == sorted(y) for x, y in zip(a, b))


def holes_and_islands() -> np.ndarray:
    """A hand-made map: a ring with an island of its own class and one of another class in its
    hole, a C shape, diagonal touches, components on every border, single pixels."""
    m = np.ones((40, 50), np.int32)  # 1: ignored background
    m[5:20, 5:20] = 2
    m[8:17, 8:17] = 1  # the hole
    m[11:14, 11:14] = 2  # island of the ring's class inside the hole
    m[9, 15] = 3  # another class inside the hole
    m[25:35, 5:15] = 4
    m[27:33, 7:15] = 1  # a C open to the right
    m[30, 30] = m[31, 31] = m[32, 32] = 5  # diagonal chain: one 8-connected component
    m[0, :10] = 6
    m[:, 49] = 6
    m[39, 20:25] = 7
    m[20, 40] = 7
    m[0, 0] = 0  # no-data, ignored
    return m


def label_maps(n: int, size: int) -> list[np.ndarray]:
    from remoteclip.synthetic.scenes import SCENES, render_scene
    from remoteclip.synthetic.writers import _LOVEDA_GROUND, _LOVEDA_OBJECT, LOVEDA_VALUES, semantic_map

    kinds = list(SCENES)
    maps = []
    for i in range(n):
        scene = render_scene(np.random.default_rng(i), kinds[i % len(kinds)], size)
        classes, names = semantic_map(scene, _LOVEDA_GROUND, _LOVEDA_OBJECT, "background")
        lut = np.array([LOVEDA_VALUES[nm] for nm in names])
        maps.append(lut[classes].astype(np.int32))
    return maps


def m2b_rows(maps: list[np.ndarray]) -> list[Row]:
    import scipy
    from scipy import ndimage

    skimage_folder = use_peer("skimage", SKIMAGE)
    import skimage

    t_ours, boxes = timed(lambda: [ours(m) for m in maps])
    t_scipy, by_scipy = timed(lambda: [scipy_boxes(m) for m in maps])
    t_skimage, by_skimage = timed(lambda: [skimage_boxes(m) for m in maps])
    assert same_boxes(boxes, by_scipy), "scipy.ndimage (8-connected) boxes differ from ours"
    assert same_boxes(boxes, by_skimage), "skimage regionprops boxes differ from ours"
    cross = sum(len(scipy_boxes(m, structure=ndimage.generate_binary_structure(2, 1))) for m in maps)
    n_boxes = sum(map(len, boxes))
    size = maps[0].shape[0]
    what = f"M2B, {len(maps) - 1} LoveDA-style {size} px maps + holes/islands map, {n_boxes} boxes"
    equal = "same (class, x, y, w, h) boxes per map, 8-connected"
    return [
        Row(
            what,
            t_ours,
            t_scipy,
            f"scipy {scipy.__version__} ndimage.label+find_objects",
            equal,
            f"scipy's default 4-connectivity would give {cross} boxes",
        ),
        Row(
            what,
            t_ours,
            t_skimage,
            f"scikit-image {skimage.__version__} label+regionprops",
            equal,
            f"installed in {skimage_folder.relative_to(REPO)}",
        ),
    ]


def b2c_share(scale: float) -> Row:
    """Wall time of the demo's parse (M2B included) and B2C steps; B2C's share of the two."""
    import remoteclip.convert as convert
    import remoteclip.formats.coco as coco
    import remoteclip.formats.masks as masks
    from remoteclip.b2c import B2CSettings, load_templates
    from remoteclip.config import dataset_spec, load
    from remoteclip.synthetic import SynthSpec, synthesize, write_marker

    config = load(REPO / "config" / "config.yaml", REPO / "workflow" / "schemas" / "config.schema.yaml")
    b2c = config["b2c"]
    settings = B2CSettings(
        templates=load_templates(REPO / b2c["templates"]),
        **{k: tuple(v) if k == "center_region" else v for k, v in b2c.items() if k != "templates"},
    )
    # instrumentation, not a substitute: the real functions run, their time is added up
    spent = {"m2b": 0.0, "captions": 0.0}

    def clocked(fn, key):
        def wrapper(*args, **kwargs):
            seconds, out = timed(fn, *args, **kwargs)
            spent[key] += seconds
            return out

        return wrapper

    masks.class_boxes = clocked(masks.class_boxes, "m2b")
    coco.class_boxes = clocked(coco.class_boxes, "m2b")
    convert.captions_for = clocked(convert.captions_for, "captions")
    parse_s = b2c_s = 0.0
    images = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, entry in config["datasets"].items():
            if entry["group"] not in ("DET", "SEG"):
                continue
            synth = dict(entry["synthetic"])
            synth["images"] = max(4, int(synth["images"] * scale))
            root = Path(tmp) / name
            spec = SynthSpec(name=name, size=synth.pop("size", config["synthetic"]["size"]), **synth)
            write_marker(root, spec, synthesize(spec, root, progress=False))
            ds = dataset_spec(name, {**entry, "root": str(root)})
            t_parse, rep = timed(convert.parse_dataset, ds, f"{tmp}/{name}.json", f"{tmp}/{name}.report.json")
            t_b2c, _ = timed(
                convert.b2c_dataset,
                ds,
                f"{tmp}/{name}.json",
                f"{tmp}/{name}.report.json",
                settings,
                f"{tmp}/{name}.jsonl",
                f"{tmp}/{name}.b2c.json",
            )
            parse_s, b2c_s, images = parse_s + t_parse, b2c_s + t_b2c, images + rep["images"]
    total = parse_s + b2c_s
    return Row(
        f"B2C share of parse + M2B + B2C, demo DET/SEG sources at {scale:g} of their size ({images} images)",
        b2c_s,
        None,
        "none (no library writes B2C captions)",
        "not applicable",
        f"B2C {100 * b2c_s / total:.1f} % of {total:.2f} s (captions_for alone {spent['captions']:.2f} s); "
        f"parse {parse_s:.2f} s of which M2B {spent['m2b']:.2f} s",
        {"share": b2c_s / total, "parse_s": parse_s, "m2b_s": spent["m2b"], "captions_s": spent["captions"]},
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--masks", type=int, default=60)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--scale", type=float, default=0.25, help="fraction of the demo's DET/SEG images for B2C")
    add_json_flag(ap)
    args = ap.parse_args()
    maps = label_maps(args.masks, args.size) + [holes_and_islands()]
    report([*m2b_rows(maps), b2c_share(args.scale)], args.json)


if __name__ == "__main__":
    main()
