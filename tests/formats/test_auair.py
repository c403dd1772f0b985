import json
from pathlib import Path

import pytest

from remoteclip.formats import auair
from remoteclip.formats.base import FormatError, SkipLog

from .fixtures import box_tuples, by_file, write_corrupt, write_image

CATEGORIES = ["Human", "Car", "Truck", "Van", "Motorbike", "Bicycle", "Bus", "Trailer"]
FIRST = "frame_20190829091111_x_0000000.jpg"
SECOND = "frame_20190829091111_x_0000001.jpg"


def entry(name: str, boxes: list[dict], width_key: str = "image_width:", **extra) -> dict:
    """One per-image dict as the real file has it, flight metadata included."""
    return {
        "image_name": name,
        width_key: 64,
        "image_height": 48,
        "time": {"year": 2019, "month": 8},
        "altitude": 21470.0,
        "linear_x": 0.01,
        "bbox": boxes,
        **extra,
    }


def make_tree(root: Path, annotations: list | None = None) -> Path:
    write_image(root / "images" / FIRST)
    write_image(root / "images" / SECOND)
    if annotations is None:
        annotations = [
            entry(
                FIRST,
                [
                    {"top": 3, "left": 2, "height": 8, "width": 10, "class": 0},
                    {"top": 10, "left": 20, "height": 12, "width": 15, "class": 4},
                    {"top": 40, "left": 50, "height": 30, "width": 30, "class": 7},
                ],
            ),
            entry(SECOND, [{"top": 1, "left": 1, "height": 4, "width": 4, "class": 1}], width_key="image_width"),
        ]
    data = {"info": {"description": "AU-AIR"}, "licenses": [], "categories": CATEGORIES, "annotations": annotations}
    (root / "annotations.json").write_text(json.dumps(data))
    return root


def parse(root: Path, strict: bool = False, **options):
    skips = SkipLog(strict=strict)
    return list(auair.parse(root, options, skips)), skips


def test_every_box_and_class_is_recovered(tmp_path):
    records, skips = parse(make_tree(tmp_path))
    found = by_file(records)
    assert box_tuples(found[f"images/{FIRST}"]) == [
        ("person", 2, 3, 10, 8),
        ("motorcycle", 20, 10, 15, 12),
        ("trailer", 50, 40, 14, 8),
    ]
    assert box_tuples(found[f"images/{SECOND}"]) == [("car", 1, 1, 4, 4)]
    assert [(r.width, r.height, r.split) for r in records] == [(64, 48, "train")] * 2
    assert skips.entries == []


def test_categories_option_overrides_the_file(tmp_path):
    records, _ = parse(make_tree(tmp_path), categories=["pedestrian", "van"], split="all")
    assert [b.category for b in records[1].boxes] == ["van"]
    assert records[0].split == "all"


def bad_box_tree(root: Path, bad: dict) -> Path:
    return make_tree(root, [entry(FIRST, [{"top": 1, "left": 1, "height": 4, "width": 4, "class": 1}, bad])])


@pytest.mark.parametrize(
    "bad, reason",
    [
        ({"top": 1, "left": 1, "height": 4, "class": 1}, "box lacks width"),
        ({"top": 1, "left": 1, "height": 4, "width": "wide", "class": 1}, "not a number: 'wide'"),
        ({"top": 1, "left": 1, "height": 4, "width": 4, "class": 8}, "class 8 is not an index"),
        ({"top": 100, "left": 100, "height": 4, "width": 4, "class": 1}, "lies outside the 64x48 image"),
        ([1, 1, 4, 4], "box is not an object"),
    ],
)
def test_bad_box_names_file_and_entry(tmp_path, bad, reason):
    root = bad_box_tree(tmp_path, bad)
    with pytest.raises(FormatError) as err:
        parse(root, strict=True)
    assert str(err.value).startswith(f"{root / 'annotations.json'}: annotations[0].bbox[1]: ")
    assert reason in str(err.value)
    records, skips = parse(root)
    assert box_tuples(records[0]) == [("car", 1, 1, 4, 4)]
    assert [e["what"] for e in skips.entries] == ["object"]


@pytest.mark.parametrize(
    "bad, reason",
    [
        ({"image_width:": 64, "image_height": 48, "bbox": []}, "annotations[1] has no 'image_name'"),
        ({"image_name": SECOND, "image_width:": 64, "image_height": 48}, "has no 'bbox' list"),
        (entry("frame_missing.jpg", []), "image file 'frame_missing.jpg' not found"),
        (entry(SECOND, [], image_height=50), "declared size 64x50 but"),
        ({**entry(SECOND, []), "image_width:": "wide"}, "must be numbers"),
    ],
)
def test_bad_image_entry_is_an_image_skip(tmp_path, bad, reason):
    root = make_tree(tmp_path, [entry(FIRST, []), bad])
    with pytest.raises(FormatError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse(root, strict=True)
    records, skips = parse(root)
    assert [r.file_name for r in records] == [f"images/{FIRST}"]
    assert skips.entries[0]["what"] == "image" and reason in skips.entries[0]["reason"]


def test_size_is_read_from_the_image_when_not_declared(tmp_path):
    plain = {"image_name": FIRST, "bbox": [{"top": 1, "left": 1, "height": 4, "width": 4, "class": 2}]}
    records, skips = parse(make_tree(tmp_path, [plain]), strict=True)
    assert (records[0].width, records[0].height, box_tuples(records[0])) == (64, 48, [("truck", 1, 1, 4, 4)])


def test_corrupt_image_is_an_image_skip(tmp_path):
    root = make_tree(tmp_path)
    image = write_corrupt(root / "images" / SECOND)
    records, skips = parse(root)
    assert [r.file_name for r in records] == [f"images/{FIRST}"]
    assert skips.entries[0]["file"] == str(image) and "unreadable image" in skips.entries[0]["reason"]


def test_empty_bbox_list_is_an_image_without_objects(tmp_path):
    records, skips = parse(make_tree(tmp_path, [entry(FIRST, [])]), strict=True)
    assert [(r.file_name, r.boxes) for r in records] == [(f"images/{FIRST}", [])]


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "not valid JSON"),
        (b'{"annotations": [', "not valid JSON"),
        (b'{"categories": []}', "'annotations' list"),
        (b'{"categories": "Human", "annotations": []}', "'categories' must be a list"),
    ],
)
def test_unusable_annotation_file_always_raises(tmp_path, content, reason):
    root = make_tree(tmp_path)
    (root / "annotations.json").write_bytes(content)
    with pytest.raises(FormatError, match=reason):
        parse(root)


def test_missing_annotation_file_raises(tmp_path):
    with pytest.raises(FormatError, match="annotation file missing"):
        parse(tmp_path)
