"""The synthetic demo world: procedurally rendered aerial-like scenes written in the real
on-disk formats of the paper's sources, so the same parsers run on the demo as on real data.

Seeded and deterministic: image i of dataset d depends only on (seed, d, i), so the
rendering can run in a process pool and still give byte-identical files.

Rule `synthesize` (scripts/synthesize.py): renders one dataset with a `synthetic:` section into
<data>/raw/{dataset}/ (emptied first) in its writer's layout (`writers.WRITERS`) and writes the
`.verified` marker the download rules would, holding what was generated. Every later stage reads
it like downloaded data. A dataset's `copies` re-render given images of other synthetic datasets
after its own (the same pixels, written in this dataset's layout): the planted cross-source
duplicates and benchmark test leaks that de-duplication must find.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..parallel import imap
from .scenes import SCENES, Scene, render_count, render_scene
from .writers import WRITERS, GroundTruth

OBJECT_SCENES = [
    "airport",
    "harbor",
    "parking lot",
    "highway",
    "industrial area",
    "storage tanks",
    "dense residential",
    "sparse residential",
    "river",
    "playground",
    "roundabout",
    "lake",
    "beach",
    "forest",
]
URBAN_SCENES = [
    "parking lot",
    "highway",
    "industrial area",
    "dense residential",
    "sparse residential",
    "playground",
    "roundabout",
]
COUNT_CLASSES = ["plane", "ship", "storage tank", "tennis court", "swimming pool", "helicopter", "basketball court"]

DEFAULT_SCENES = {
    "dota": OBJECT_SCENES,
    "dior": OBJECT_SCENES,
    "isaid": OBJECT_SCENES,
    "potsdam": URBAN_SCENES,
    "loveda": list(SCENES),
    "karpathy": list(SCENES),
    "class_folders": list(SCENES),
    **{name: list(SCENES) for name in ("rs5m", "rsteller", "skyscript", "git10m", "gaia")},
}


@dataclasses.dataclass
class SynthSpec:
    name: str
    writer: str
    images: int
    size: int = 128
    seed: int = 0
    splits: dict[str, float] = dataclasses.field(default_factory=lambda: {"train": 1.0})
    scenes: list[str] | None = None
    clutter: float = 0.3
    nodata: float = 0.0
    mix: float = 0.0  # chance that a slice of another scene type is pasted in (mixed scenes)
    count_fraction: float = 0.0  # detection sets: share of images holding 1-12 objects of one class
    count_classes: list[str] | None = None
    options: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.writer not in WRITERS:
            raise ValueError(
                f"{self.name}: unknown synthetic writer {self.writer!r}; known: {', '.join(sorted(WRITERS))}"
            )
        unknown = set(self.scenes or []) - set(SCENES)
        if unknown:
            raise ValueError(f"{self.name}: unknown scene types {sorted(unknown)}; known: {', '.join(SCENES)}")
        if abs(sum(self.splits.values()) - 1) > 1e-6:
            raise ValueError(f"{self.name}: split fractions {self.splits} do not sum to 1")

    def rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(self.name.encode()), *key])


def _split_of(spec: SynthSpec, index: int) -> str:
    """Deterministic split: the first fraction of indices goes to the first split, etc."""
    edge = 0.0
    position = (index + 0.5) / spec.images
    for split, fraction in spec.splits.items():
        edge += fraction
        if position <= edge + 1e-9:
            return split
    return list(spec.splits)[-1]


def _render(job: tuple[SynthSpec, int]) -> tuple[int, str, Scene]:
    spec, index = job
    rng = spec.rng(index)
    if spec.writer == "count":
        classes = spec.count_classes or COUNT_CLASSES
        category = classes[index % len(classes)]
        count = int(rng.integers(1, 11))
        scene = render_count(rng, category, count, spec.size)
    elif spec.count_fraction and rng.random() < spec.count_fraction:
        # DOTA-like images dominated by one countable class, as B2C's count captions need
        classes = spec.count_classes or COUNT_CLASSES + ["small vehicle", "large vehicle"]
        scene = render_count(rng, str(rng.choice(classes)), int(rng.integers(1, 13)), spec.size)
    else:
        kinds = spec.scenes or DEFAULT_SCENES[spec.writer]
        # cycle through scene types so every class has the same number of images
        kind = kinds[index % len(kinds)]
        scene = render_scene(rng, kind, spec.size, spec.clutter, spec.nodata, spec.mix)
    return index, _split_of(spec, index), scene


def iter_scenes(spec: SynthSpec, workers: int = 1, progress: bool = True) -> Iterator[tuple[int, str, Scene]]:
    jobs = [(spec, i) for i in range(spec.images)]
    bar = tqdm(total=spec.images, desc=f"synthesize {spec.name}", unit="img", disable=not progress)
    for item in imap(_render, jobs, workers, chunksize=8):
        yield item
        bar.update()
    bar.close()


def spec_from_config(name: str, synthetic: dict, defaults: dict, seed: int) -> SynthSpec:
    """The SynthSpec of a dataset's `synthetic:` section (config defaults for size and clutter)."""
    synth = {k: v for k, v in synthetic.items() if k != "copies"}
    return SynthSpec(
        name=name,
        seed=seed,
        size=synth.pop("size", defaults["size"]),
        clutter=synth.pop("clutter", defaults["clutter"]),
        **synth,
    )


def copied_scenes(copies: Sequence[tuple[SynthSpec, Sequence[int]]], start: int) -> Iterator[tuple[int, str, Scene]]:
    """The given images of other datasets, re-rendered (pixel for pixel), numbered from `start`."""
    index = start
    for spec, indices in copies:
        for i in indices:
            if not 0 <= i < spec.images:
                raise ValueError(f"copies: {spec.name} has {spec.images} images, no image {i}")
            yield index, "train", _render((spec, i))[2]
            index += 1


def synthesize(
    spec: SynthSpec,
    root: Path,
    workers: int = 1,
    progress: bool = True,
    copies: Sequence[tuple[SynthSpec, Sequence[int]]] = (),
) -> GroundTruth:
    """Render `spec.images` scenes, then the `copies`, and write them under `root` (emptied first)."""
    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    writer = WRITERS[spec.writer]
    scenes = itertools.chain(iter_scenes(spec, workers, progress), copied_scenes(copies, spec.images))
    truth = writer(root, scenes, spec.rng(2**31), **spec.options)
    return truth


def write_marker(root: Path, spec: SynthSpec, truth: GroundTruth) -> None:
    """The `.verified` marker the download stage would write, with what was generated."""
    summary = {
        "dataset": spec.name,
        "origin": "synthetic",
        "writer": spec.writer,
        "images": len(truth),
        "objects": sum(len(v) for v in truth.values()),
        "seed": spec.seed,
        "size": spec.size,
    }
    (Path(root) / ".verified").write_text(json.dumps(summary, indent=1) + "\n")


__all__ = [
    "SynthSpec",
    "synthesize",
    "spec_from_config",
    "copied_scenes",
    "write_marker",
    "iter_scenes",
    "SCENES",
    "COUNT_CLASSES",
]
