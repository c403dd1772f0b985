"""Web corpora in their release layouts, written by the tests (small: a few members each).

- RS5M (om-ai-lab/RS5M dataloader.py): `{pub11,rs3}-train-0000.tar`, members `<key>.img_content`
  (the image's bytes), `<key>.img_name`, `<key>.caption`.
- RSTeller (SlytherinGe/RSTeller README): `JPG/Patches0000.tar`, members `<id>.jpg`, `<id>.txt`
  (one caption a line) and `<id>.json` ({"metadata", "annotations": [{"task", "text"}]}).
- Git-10M (Hub lcybuaa/Git-10M as the field notes give it): Parquet written as Hugging Face
  `datasets` writes it, `image` a struct {bytes, path}, with caption, img_name,
  img_quality_score, caption_length, resolution and Google_location columns.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


def noise_image(seed: int, size: int = 40, fmt: str = "JPEG") -> bytes:
    """A small image of its own (noise: distinct pHashes), encoded."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A plain tar with these members in this order (what WebDataset's TarWriter writes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_rs5m(root: Path, per_tar: int = 3) -> dict[str, bytes]:
    """Two RS5M tars; returns {image member path relative to root: its bytes}."""
    images = {}
    for part, subset in enumerate(("pub11", "rs3")):
        members = []
        for i in range(per_tar):
            key = f"{subset}_{i:05d}"
            data = noise_image(100 * part + i)
            members += [
                (f"{key}.img_content", data),
                (f"{key}.img_name", f"{key}.jpg".encode()),
                (f"{key}.caption", f"a {subset} scene number {i}".encode()),
            ]
            images[f"{subset}-train-0000.tar/{key}.img_content"] = data
        write_tar(root / f"{subset}-train-0000.tar", members)
    return images


def rsteller_json(patch: int, captions: list[str]) -> bytes:
    annotations = [{"task": 2 if i == 0 else 3, "text": c} for i, c in enumerate(captions)]
    return json.dumps(
        {"metadata": {"patch_id": patch, "image_name": f"m_{patch}"}, "annotations": annotations}
    ).encode()


def write_rsteller(root: Path, per_tar: int = 2) -> dict[str, list[str]]:
    """Two RSTeller tars under JPG/; returns {image member path relative to root: its captions}."""
    captions = {}
    for shard in range(2):
        members = []
        for i in range(per_tar):
            patch = 600 + 10 * shard + i
            texts = [f"a road crosses patch {patch}", f"patch {patch} shows a road", f"fields around {patch}"][
                : 2 + i % 2
            ]
            members += [
                (f"{patch}.jpg", noise_image(patch)),
                (f"{patch}.txt", "\n".join(texts).encode()),
                (f"{patch}.json", rsteller_json(patch, texts)),
            ]
            captions[f"JPG/Patches{shard:04d}.tar/{patch}.jpg"] = texts
        write_tar(root / f"JPG/Patches{shard:04d}.tar", members)
    return captions


def write_git10m(path: Path, rows: int = 5, row_group_size: int = 3, images: list[bytes] | None = None) -> list[bytes]:
    """One Git-10M Parquet file in row groups of `row_group_size`; returns the image bytes in row order."""
    from remoteclip.synthetic.corpora import write_git10m_table

    images = images if images is not None else [noise_image(1000 + i) for i in range(rows)]
    table = [
        {
            "image": data,
            "img_name": f"{i:08d}.png",
            "img_quality_score": 0.5 + i / 100,
            "caption": f"an aerial view of place {i}",
            "caption_length": 6,
            "resolution": 1.2,
            "Google_location": f"{10 + i}.0,{20 + i}.0",
        }
        for i, data in enumerate(images)
    ]
    write_git10m_table(path, table, row_group_size)
    return images
