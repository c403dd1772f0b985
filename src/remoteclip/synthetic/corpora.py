"""Synthetic web corpora in their release layouts (group WEB), so the corpora's formats run on
the demo world as on the real releases: RS5M and RSTeller as WebDataset tars, SkyScript as a
caption table beside image folders, Git-10M as Parquet with embedded images, GAIA as a URL list
(JSON records) whose images a local server plays for the img2dataset fetch.

The layouts follow what the formats' modules verified in each release (their docstrings say
where, and what stays unverified):

- RS5M (om-ai-lab/RS5M dataloader.py and README tree): `train/{pub11,rs3}-train-NNNN.tar`, members
  `<key>.img_content` (the image's bytes), `<key>.img_name`, `<key>.caption`.
- RSTeller (SlytherinGe/RSTeller README, Hub commit 3c3cb62): `JPG/train-NNNNNN.tar`, members `<id>.jpg`, `<id>.txt`
  (one caption a line) and `<id>.json` ({"metadata", "annotations": [{"task", "text"}]}).
- SkyScript (wangzhecheng/SkyScript README): images unpacked from `images2.zip` ... under
  `images2/...`, and a comma-separated table with `filepath,title,title_multi_objects`
  (SkyScript_train_top50pct_filtered_by_CLIP_openai.csv, the catalogue's table).
- Git-10M (Hub lcybuaa/Git-10M): Parquet as Hugging Face `datasets` writes it, `image` a struct
  {bytes, path}, with caption, img_name, img_quality_score, caption_length, resolution and
  Google_location columns.
- GAIA (Orion-AI-Lab/GAIA): a JSON array of records with id, image_src (the URL), image_alt,
  captions (five strings) and metadata fields; the images are written to `serve/` for a server.

Captions are web-style: one sentence in the corpus's register (the demo grammar's first
caption), not the five RET-style sentences, except where the release has several (RSTeller,
GAIA). Each writer's scenes may include re-rendered scenes of other synthetic datasets
(`copies`, remoteclip.synthetic): planted cross-source duplicates and benchmark test leaks.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from .scenes import Scene

Truth = dict[str, list[tuple[str, list[float]]]]


def _encoded(image: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _caption(rng: np.random.Generator, scene: Scene, n: int = 1) -> list[str]:
    from .grammar import describe

    return describe(rng, scene.kind, scene.counts(), n=n)


def _write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    """A plain tar, members in this order (as WebDataset's TarWriter writes them), fixed metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))


def _batches(scenes: Iterator[tuple[int, str, Scene]], per_tar: int) -> Iterator[list[tuple[int, Scene]]]:
    batch: list[tuple[int, Scene]] = []
    for index, _split, scene in scenes:
        batch.append((index, scene))
        if len(batch) == per_tar:
            yield batch
            batch = []
    if batch:
        yield batch


def write_rs5m(
    root: Path, scenes: Iterator[tuple[int, str, Scene]], rng: np.random.Generator, per_tar: int = 8
) -> Truth:
    """RS5M: tars alternate between the `pub11` and `rs3` subsets."""
    truth: Truth = {}
    for number, batch in enumerate(_batches(scenes, per_tar)):
        subset = ("pub11", "rs3")[number % 2]
        tar = f"train/{subset}-train-{number // 2:04d}.tar"
        members = []
        for index, scene in batch:
            key = f"{subset}_{index:06d}"
            caption = _caption(rng, scene)[0]
            members += [
                (f"{key}.img_content", _encoded(scene.image)),
                (f"{key}.img_name", f"{key}.jpg".encode()),
                (f"{key}.caption", caption.encode()),
            ]
            truth[f"{tar}/{key}.img_content"] = [(caption, [])]
        _write_tar(root / tar, members)
    return truth


def write_rsteller(
    root: Path, scenes: Iterator[tuple[int, str, Scene]], rng: np.random.Generator, per_tar: int = 8
) -> Truth:
    """RSTeller: JPG/train-NNNNNN.tar with 2-5 captions per patch (task 2 first, then task 3)."""
    truth: Truth = {}
    for number, batch in enumerate(_batches(scenes, per_tar)):
        tar = f"JPG/train-{number:06d}.tar"
        members = []
        for index, scene in batch:
            patch = 10_000 + index
            captions = _caption(rng, scene, n=int(rng.integers(2, 6)))
            annotations = [{"task": 2 if i == 0 else 3, "text": c} for i, c in enumerate(captions)]
            record = {"metadata": {"patch_id": patch, "image_name": f"m_{patch}"}, "annotations": annotations}
            members += [
                (f"{patch}.jpg", _encoded(scene.image)),
                (f"{patch}.txt", "\n".join(captions).encode()),
                (f"{patch}.json", json.dumps(record).encode()),
            ]
            truth[f"{tar}/{patch}.jpg"] = [(c, []) for c in captions]
        _write_tar(root / tar, members)
    return truth


def write_skyscript(root: Path, scenes: Iterator[tuple[int, str, Scene]], rng: np.random.Generator) -> Truth:
    """SkyScript: images2/<n>/<id>.jpg and SkyScript_train_top50pct_filtered_by_CLIP_openai.csv."""
    truth: Truth = {}
    table = root / "SkyScript_train_top50pct_filtered_by_CLIP_openai.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filepath", "title", "title_multi_objects"])
        for index, _split, scene in scenes:
            rel = f"images2/{index // 100:03d}/a{index:07d}_{scene.kind.replace(' ', '_')}.jpg"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(_encoded(scene.image))
            title, multi = _caption(rng, scene, n=2)
            writer.writerow([rel, title, multi])
            truth[rel] = [(title, []), (multi, [])]
    return truth


# Git-10M's columns with the feature types Hugging Face `datasets` records in the file's metadata
GIT10M_FEATURES = {
    "image": {"_type": "Image"},
    "img_name": {"dtype": "string", "_type": "Value"},
    "img_quality_score": {"dtype": "float64", "_type": "Value"},
    "caption": {"dtype": "string", "_type": "Value"},
    "caption_length": {"dtype": "int64", "_type": "Value"},
    "resolution": {"dtype": "float64", "_type": "Value"},
    "Google_location": {"dtype": "string", "_type": "Value"},
}


def write_git10m_table(path: Path, rows: list[dict], row_group_size: int) -> None:
    """One Parquet file of Git-10M rows ({column: value}, the image as its encoded bytes) as
    `datasets` writes it: `image` a struct {bytes, path}, the features in the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    columns = {
        name: [{"bytes": r[name], "path": None} for r in rows] if name == "image" else [r[name] for r in rows]
        for name in GIT10M_FEATURES
    }
    table = pa.table({name: pa.array(v, image_type if name == "image" else None) for name, v in columns.items()})
    metadata = {"huggingface": json.dumps({"info": {"features": GIT10M_FEATURES}})}
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(metadata), path, row_group_size=row_group_size)


def write_git10m(
    root: Path, scenes: Iterator[tuple[int, str, Scene]], rng: np.random.Generator, row_group_size: int = 16
) -> Truth:
    """Git-10M: data/train-00000-of-00001.parquet, images as PNG bytes in the `image` struct."""
    rows: list[dict] = []
    for index, _split, scene in scenes:
        caption = _caption(rng, scene)[0]
        rows.append(
            {
                "image": _encoded(scene.image, "PNG"),
                "img_name": f"{index:08d}.png",
                "img_quality_score": round(float(rng.uniform(0.3, 1.0)), 3),
                "caption": caption,
                "caption_length": len(caption.split()),
                "resolution": float(rng.choice([0.5, 1.0, 2.0])),
                "Google_location": f"{rng.uniform(-60, 60):.4f},{rng.uniform(-180, 180):.4f}",
            }
        )
    path = root / "data" / "train-00000-of-00001.parquet"
    write_git10m_table(path, rows, row_group_size)
    return {f"data/{path.name}/{i}": [(r["caption"], [])] for i, r in enumerate(rows)}


def write_gaia(
    root: Path,
    scenes: Iterator[tuple[int, str, Scene]],
    rng: np.random.Generator,
    url_base: str = "http://127.0.0.1:8000",
    list_name: str = "train_data.json",
) -> Truth:
    """GAIA: <list_name> (an array of records whose image_src is <url_base>/<id>.png) and the
    images under serve/, for a server at url_base to play the image hosts."""
    truth: Truth = {}
    records = []
    for index, _split, scene in scenes:
        name = f"gaia_{index:06d}.png"
        (root / "serve").mkdir(parents=True, exist_ok=True)
        (root / "serve" / name).write_bytes(_encoded(scene.image, "PNG"))
        captions = _caption(rng, scene, n=5)
        records.append(
            {
                "id": index,
                "image_src": f"{url_base.rstrip('/')}/{name}",
                "image_alt": captions[0],
                "captions": captions,
                "credits": "synthetic",
                "location": "nowhere",
                "lat": 0.0,
                "lon": 0.0,
                "tag": scene.kind,
                "resolution": "high",
                "satellite": "synthetic",
                "sensor": "rgb",
                "modalities": ["rgb"],
            }
        )
        truth[name] = [(c, []) for c in captions]
    (root / list_name).write_text(json.dumps(records))
    return truth


CORPUS_WRITERS = {
    "rs5m": write_rs5m,
    "rsteller": write_rsteller,
    "skyscript": write_skyscript,
    "git10m": write_git10m,
    "gaia": write_gaia,
}
