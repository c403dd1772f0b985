"""The synthetic web corpora: each writer's release layout, and `copies` re-rendering other
datasets' images pixel for pixel (the planted duplicates and leaks the corpora test relies on)."""

from __future__ import annotations

import csv
import io
import json
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from remoteclip.config import copy_sources
from remoteclip.synthetic import SynthSpec, synthesize

RSICD = SynthSpec("t_rsicd", "karpathy", 6, size=64, splits={"train": 0.5, "test": 0.5})


@pytest.fixture(scope="module")
def rsicd(tmp_path_factory):
    root = tmp_path_factory.mktemp("rsicd")
    synthesize(RSICD, root, progress=False)
    files = json.loads((root / "dataset_rsicd.json").read_text())["images"]
    return {i["imgid"]: (root / "RSICD_images" / i["filename"]).read_bytes() for i in files}


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def same_scene(png: bytes, jpeg: bytes, other: bytes) -> bool:
    """The lossless copy is within JPEG's error of the original, and far from another image."""
    return np.abs(pixels(png) - pixels(jpeg)).mean() < 5 < np.abs(pixels(png) - pixels(other)).mean()


def corpus(tmp_path, writer: str, **options):
    spec = SynthSpec(f"t_{writer}", writer, 4, size=64, options=options)
    synthesize(spec, tmp_path, progress=False, copies=[(RSICD, [1, 4])])
    return tmp_path


def tar_members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_rs5m_tars_hold_image_name_and_caption_members_and_the_copies_bytes(tmp_path, rsicd):
    root = corpus(tmp_path, "rs5m", per_tar=4)
    assert sorted(p.name for p in root.glob("train/*.tar")) == ["pub11-train-0000.tar", "rs3-train-0000.tar"]
    members = tar_members(root / "train" / "rs3-train-0000.tar")  # images 4, 5: the two copies
    assert sorted(members) == [f"rs3_{i:06d}.{s}" for i in (4, 5) for s in ("caption", "img_content", "img_name")]
    assert members["rs3_000004.img_content"] == rsicd[1] and members["rs3_000005.img_content"] == rsicd[4]
    assert members["rs3_000004.img_name"] == b"rs3_000004.jpg"
    assert members["rs3_000004.caption"].decode().strip()


def test_rsteller_tars_hold_jpg_txt_and_json_with_the_captions_as_annotations(tmp_path, rsicd):
    root = corpus(tmp_path, "rsteller", per_tar=3)
    tars = sorted(root.glob("JPG/train-*.tar"))
    assert [t.name for t in tars] == ["train-000000.tar", "train-000001.tar"]
    members = tar_members(tars[1])
    record = json.loads(members["10004.json"])
    assert [a["text"] for a in record["annotations"]] == members["10004.txt"].decode().split("\n")
    assert 2 <= len(record["annotations"]) <= 5 and record["metadata"]["patch_id"] == 10004
    assert members["10004.jpg"] == rsicd[1]


def test_skyscript_table_names_images_relative_to_the_root(tmp_path, rsicd):
    root = corpus(tmp_path, "skyscript")
    with (root / "SkyScript_train_top50pct_filtered_by_CLIP_openai.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["filepath", "title", "title_multi_objects"] and len(rows) == 6
    assert all((root / r["filepath"]).is_file() and r["filepath"].startswith("images2/") for r in rows)
    assert (root / rows[5]["filepath"]).read_bytes() == rsicd[4]


def test_git10m_parquet_embeds_the_images_as_datasets_writes_them(tmp_path, rsicd):
    root = corpus(tmp_path, "git10m", row_group_size=4)
    file = pq.ParquetFile(root / "data" / "train-00000-of-00001.parquet")
    assert file.metadata.num_row_groups == 2 and file.metadata.num_rows == 6
    assert "huggingface" in json.dumps({k.decode(): v.decode() for k, v in file.schema_arrow.metadata.items()})
    table = file.read()
    assert set(table.column_names) >= {"image", "caption", "img_quality_score", "resolution", "Google_location"}
    image = table.column("image")[4].as_py()
    assert set(image) == {"bytes", "path"}
    assert same_scene(image["bytes"], rsicd[1], rsicd[4])


def test_gaia_url_list_points_at_the_served_images(tmp_path, rsicd):
    root = corpus(tmp_path, "gaia", url_base="http://127.0.0.1:9/x")
    records = json.loads((root / "train_data.json").read_text())
    assert len(records) == 6 and all(len(r["captions"]) == 5 for r in records)
    name = records[5]["image_src"].rsplit("/", 1)[1]
    assert records[5]["image_src"] == f"http://127.0.0.1:9/x/{name}"
    assert same_scene((root / "serve" / name).read_bytes(), rsicd[4], rsicd[1])


def test_a_copy_of_an_image_that_does_not_exist_or_of_a_dataset_that_is_not_synthetic_is_refused(tmp_path):
    with pytest.raises(ValueError, match="t_rsicd has 6 images, no image 6"):
        synthesize(SynthSpec("t", "rs5m", 1, size=64), tmp_path, progress=False, copies=[(RSICD, [6])])
    datasets = {"web": {"synthetic": {"writer": "rs5m", "images": 2, "copies": [{"dataset": "real", "indices": [0]}]}}}
    datasets["real"] = {"group": "RET"}
    with pytest.raises(ValueError, match="web: copies images of 'real', which is not a configured synthetic dataset"):
        copy_sources(datasets, "web")
