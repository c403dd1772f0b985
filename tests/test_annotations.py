"""The unified COCO file written record by record and read back image by image: the bytes are
the standard library's `json.dumps` of the whole file, pycocotools loads it, B2C's reader gives
the records back, and a file it cannot stream is refused with its name."""

import json

import pytest
from pycocotools.coco import COCO

from remoteclip.annotations import RecordSpool, iter_records
from remoteclip.errors import FormatError
from remoteclip.formats.base import Box, ImageRecord
from remoteclip.jsonstream import top_level_items, top_level_values

RECORDS = [
    ImageRecord("train/a.png", 64, 48, [Box(1.004, 2, 10.5, 4.25, "plane"), Box(3, 3, 2, 2, "ship", True)]),
    ImageRecord("train/ünïcode €.png", 32, 32, [], "val"),  # no boxes: an image without annotations
    ImageRecord("big.tif", 128, 128, [Box(0, 0, 5, 5, "airport")], "train", (128, 0, 128, 128)),
]


def write(tmp_path, records=RECORDS):
    spool = RecordSpool(tmp_path / ".a.records")
    for record in records:
        spool.add(record)
    out = tmp_path / "a.json"
    spool.write_coco(out, "demo")
    spool.remove()
    return out, spool


def test_written_file_is_canonical_json_that_pycocotools_loads(tmp_path):
    out, spool = write(tmp_path)
    text = out.read_text(encoding="utf-8")
    data = json.loads(text)
    assert text == json.dumps(data, ensure_ascii=False) + "\n"  # one json.dumps of the whole dict
    assert [c["name"] for c in data["categories"]] == ["airport", "plane", "ship"]
    assert [c["id"] for c in data["categories"]] == [1, 2, 3]
    assert data["images"][1] == {"id": 2, "file_name": "train/ünïcode €.png", "width": 32, "height": 32, "split": "val"}
    assert data["images"][2]["crop"] == [128, 0, 128, 128]
    assert data["annotations"][0] == {
        "id": 1,
        "image_id": 1,
        "category_id": 2,
        "bbox": [1.0, 2.0, 10.5, 4.25],
        "area": 44.62,
        "iscrowd": 0,
    }
    assert data["annotations"][1]["difficult"] == 1 and data["annotations"][2]["image_id"] == 3
    coco = COCO(str(out))
    assert sorted(coco.getImgIds()) == [1, 2, 3] and len(coco.getAnnIds()) == 3
    assert (spool.images, spool.boxes, spool.distinct_files) == (3, 3, 3)
    assert not (tmp_path / ".a.records").exists()


def test_records_come_back_with_their_boxes(tmp_path):
    out, _ = write(tmp_path)
    back = list(iter_records(out))
    assert [(r.file_name, r.width, r.height, r.split, r.crop) for r in back] == [
        (r.file_name, r.width, r.height, r.split, r.crop) for r in RECORDS
    ]
    assert [[(b.category, b.x, b.y, b.w, b.h, b.difficult) for b in r.boxes] for r in back] == [
        [("plane", 1.0, 2.0, 10.5, 4.25, False), ("ship", 3.0, 3.0, 2.0, 2.0, True)],
        [],
        [("airport", 0.0, 0.0, 5.0, 5.0, False)],
    ]


def test_an_empty_parse_writes_empty_lists(tmp_path):
    out, _ = write(tmp_path, [])
    assert json.loads(out.read_text())["images"] == [] and list(iter_records(out)) == []


def test_annotations_not_in_image_order_are_refused_naming_the_file(tmp_path):
    out, _ = write(tmp_path)
    data = json.loads(out.read_text())
    data["annotations"].reverse()  # valid COCO, but not grouped in image order
    out.write_text(json.dumps(data, indent=2))
    with pytest.raises(FormatError, match=r"a\.json: annotation 2 \(image_id 1\) does not follow its image"):
        list(iter_records(out))


def test_a_file_with_categories_first_is_read_too(tmp_path):
    """Another tool's key order, and a `categories` key inside the last image: the names come
    from the outer object's list, read by a pass over the whole file."""
    out, _ = write(tmp_path)
    data = json.loads(out.read_text())
    data["images"][-1]["categories"] = [{"id": 3, "name": "decoy"}]
    reordered = {"categories": data["categories"], "annotations": data["annotations"], "images": data["images"]}
    out.write_text(json.dumps(reordered))
    assert [[b.category for b in r.boxes] for r in iter_records(out)] == [["plane", "ship"], [], ["airport"]]


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"images": [{"id": 1}, {"id": 2', "not valid JSON"),  # a truncated file
        ('{"images": [{"id": 1} {"id": 2}]}', "expected ',' or ']' in the 'images' array"),
        ('["not", "an", "object"]', "expected '{'"),
    ],
)
def test_malformed_file_is_an_error_naming_it(tmp_path, text, reason):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(FormatError, match="bad.json") as err:
        list(top_level_items(path, "images"))
    assert reason in str(err.value)


def test_values_cut_at_the_edge_of_the_reading_window_are_read_whole(tmp_path, monkeypatch):
    """A 7-character window cuts numbers, strings and objects: each is read again once whole."""
    from remoteclip import jsonstream

    monkeypatch.setattr(jsonstream, "CHUNK_CHARS", 7)
    monkeypatch.setattr(jsonstream._Text.__init__, "__defaults__", (7,))
    doc = {"n": 123456789012, "images": [{"id": i, "name": "x" * i} for i in range(30)], "categories": [], "e": []}
    path = tmp_path / "d.json"
    path.write_text(json.dumps(doc))
    assert list(top_level_items(path, "images")) == doc["images"]
    assert top_level_values(path, ["n", "categories", "e"]) == {"n": 123456789012, "categories": [], "e": []}
