"""The `parquet` caption format on Git-10M's layout (images embedded), streamed by row group."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from remoteclip.formats import FormatError, SkipLog, parquet
from remoteclip.imageio import load_sample_rgb

from .web_fixtures import noise_image, write_git10m

FILE = "data/train-00000-of-00001.parquet"


def parse(root, options=None, skips=None):
    return list(parquet.parse(root, options or {}, skips if skips is not None else SkipLog()))


def test_git10m_rows_name_their_row_group_and_decode_as_the_embedded_bytes(tmp_path):
    images = write_git10m(tmp_path / FILE, rows=5, row_group_size=3)
    rows = parse(tmp_path)
    assert [r["image"] for r in rows] == [f"{FILE}/{i}" for i in range(5)]
    assert [(r["stored"]["row_group"], r["stored"]["row"]) for r in rows] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert rows[4]["captions"] == ["an aerial view of place 4"] and rows[4]["stored"]["column"] == "image"
    for row, data in zip(rows, images):
        stored = {**row["stored"], "parquet": str(tmp_path / row["stored"]["parquet"])}
        expected = Image.open(io.BytesIO(data)).convert("RGB")
        assert load_sample_rgb(row["image"], stored).tobytes() == expected.tobytes()


def test_plain_binary_images_and_list_captions(tmp_path):
    table = pa.table(
        {
            "jpg": pa.array([noise_image(1), noise_image(2)], pa.binary()),
            "captions": [["a lake", "water", "a lake"], None],
            "title": ["a blue lake", "a road"],
        }
    )
    pq.write_table(table, tmp_path / "part.parquet")
    rows = parse(tmp_path, {"image_column": "jpg", "captions": ["captions", "title"]})
    assert [r["captions"] for r in rows] == [["a lake", "water", "a blue lake"], ["a road"]]
    stored = {**rows[1]["stored"], "parquet": str(tmp_path / "part.parquet")}
    assert load_sample_rgb("part.parquet/1", stored).size == (40, 40)


def test_a_file_without_the_image_column_names_the_file_and_its_columns(tmp_path):
    write_git10m(tmp_path / FILE, rows=2)
    with pytest.raises(FormatError, match="no image column 'img'") as err:
        parse(tmp_path, {"image_column": "img"})
    assert str(tmp_path / FILE) in str(err.value) and "img_name" in str(err.value) and "caption" in str(err.value)
    with pytest.raises(FormatError, match="no caption column 'title'"):
        parse(tmp_path, {"captions": ["title"]})
    with pytest.raises(FormatError, match="holds string, not image bytes"):
        parse(tmp_path, {"image_column": "caption"})


def test_a_row_without_caption_is_a_counted_skip_and_a_broken_file_an_error(tmp_path):
    table = pa.table({"image": pa.array([noise_image(1), noise_image(2)], pa.binary()), "caption": [" ", "a farm"]})
    pq.write_table(table, tmp_path / "a.parquet")
    skips = SkipLog()
    assert [r["image"] for r in parse(tmp_path, {}, skips)] == ["a.parquet/1"]
    assert skips.counts() == {"image: row 0 has no caption (caption)": 1}
    (tmp_path / "b.parquet").write_bytes(b"PAR1 but truncated")
    with pytest.raises(FormatError, match="not a readable Parquet file") as err:
        parse(tmp_path)
    assert str(tmp_path / "b.parquet") in str(err.value)
