from pathlib import Path

import pytest

from remoteclip.formats import visdrone
from remoteclip.formats.base import FormatError, SkipLog

from .fixtures import box_tuples, by_file, write_corrupt, write_image, write_text

TRAIN = "VisDrone2019-DET-train"


def make_tree(root: Path) -> Path:
    write_image(root / TRAIN / "images" / "0000001_00000_d_0000001.jpg")
    write_text(
        root / TRAIN / "annotations" / "0000001_00000_d_0000001.txt",
        [
            "2,3,10,8,1,1,0,0",  # pedestrian
            "20,10,15,12,1,4,1,2,",  # car, with the trailing comma
            "0,0,30,20,0,0,0,0",  # ignored region (category 0, score 0)
            "40,30,10,10,1,11,0,0",  # "others"
            "50,40,30,30,1,10,0,1",  # motor, reaching past the 64x48 image
            "5,5,5,5,0,2,0,0",  # people with score 0
        ],
    )
    write_image(root / TRAIN / "images" / "0000002_00000_d_0000002.jpg")
    write_text(
        root / TRAIN / "annotations" / "0000002_00000_d_0000002.txt",
        ["1,1,4,4,1,8,0,0", "", "6,6,3,3,1,2,0,0"],
        newline="\r\n",
        bom=True,
    )
    write_image(root / "VisDrone2019-DET-val" / "images" / "0000003_00000_d_0000003.jpg")
    write_text(root / "VisDrone2019-DET-val" / "annotations" / "0000003_00000_d_0000003.txt", ["10,10,5,5,1,9,0,0"])
    return root


def parse(root: Path, strict: bool = False, **options):
    skips = SkipLog(strict=strict)
    return list(visdrone.parse(root, options, skips)), skips


def test_every_box_and_class_is_recovered(tmp_path):
    records, skips = parse(make_tree(tmp_path), splits=["train", "val"])
    found = by_file(records)
    assert box_tuples(found[f"{TRAIN}/images/0000001_00000_d_0000001.jpg"]) == [
        ("pedestrian", 2, 3, 10, 8),
        ("car", 20, 10, 15, 12),
        ("motorcycle", 50, 40, 14, 8),
    ]
    assert box_tuples(found[f"{TRAIN}/images/0000002_00000_d_0000002.jpg"]) == [
        ("awning tricycle", 1, 1, 4, 4),
        ("person", 6, 6, 3, 3),
    ]
    val = found["VisDrone2019-DET-val/images/0000003_00000_d_0000003.jpg"]
    assert (val.split, box_tuples(val)) == ("val", [("bus", 10, 10, 5, 5)])
    assert {(r.width, r.height) for r in records} == {(64, 48)}
    assert skips.entries == []


def test_zero_score_and_dropped_categories_are_options(tmp_path):
    records, _ = parse(make_tree(tmp_path), skip_zero_score=False, drop_categories=[0])
    first = by_file(records)[f"{TRAIN}/images/0000001_00000_d_0000001.jpg"]
    assert [b.category for b in first.boxes] == ["pedestrian", "car", "others", "motorcycle", "person"]


def test_ignore_classes_does_not_bring_back_ignored_regions(tmp_path):
    records, _ = parse(make_tree(tmp_path), ignore_classes=["pedestrian"])
    first = by_file(records)[f"{TRAIN}/images/0000001_00000_d_0000001.jpg"]
    assert [b.category for b in first.boxes] == ["car", "motorcycle"]


@pytest.mark.parametrize(
    "line, reason",
    [
        ("1,2,3,4,1,4,0", "expected 8 fields, got 7"),
        ("1,2,3,4,1,4,0,0,0,0", "expected 8 fields, got 10"),
        ("1,two,3,4,1,4,0,0", "not a number: 'two'"),
        ("1,2,3,4,1,car,0,0", "expected integers"),
        ("1,2,3,4,1,12,0,0", "unknown object category 12"),
        ("70,60,5,5,1,4,0,0", "lies outside the 64x48 image"),
        ("1,2,-3,4,1,4,0,0", "negative size"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, line, reason):
    root = make_tree(tmp_path)
    label = root / TRAIN / "annotations" / "0000001_00000_d_0000001.txt"
    write_text(label, ["2,3,10,8,1,1,0,0", line])
    with pytest.raises(FormatError) as err:
        parse(root, strict=True)
    assert str(err.value).startswith(f"{label}:2: ")
    assert reason in str(err.value)


def test_bad_line_is_a_counted_skip_and_keeps_the_rest(tmp_path):
    root = make_tree(tmp_path)
    label = root / TRAIN / "annotations" / "0000001_00000_d_0000001.txt"
    write_text(label, ["2,3,10,8,1,1,0,0", "1,2,3", "4,4,4,4,1,5,0,0"])
    records, skips = parse(root)
    first = by_file(records)[f"{TRAIN}/images/0000001_00000_d_0000001.jpg"]
    assert [b.category for b in first.boxes] == ["pedestrian", "van"]
    assert [(e["what"], e["file"], e["line"]) for e in skips.entries] == [("object", str(label), 2)]
    assert skips.summary()["total"] == 1


def test_corrupt_image_skips_the_image(tmp_path):
    root = make_tree(tmp_path)
    image = write_corrupt(root / TRAIN / "images" / "0000002_00000_d_0000002.jpg")
    records, skips = parse(root)
    assert [r.file_name for r in records] == [f"{TRAIN}/images/0000001_00000_d_0000001.jpg"]
    assert [(e["what"], e["file"]) for e in skips.entries] == [("image", str(image))]
    assert "unreadable image" in skips.entries[0]["reason"]
    with pytest.raises(FormatError, match="unreadable image"):
        parse(root, strict=True)


def test_empty_annotation_file_is_an_image_without_objects(tmp_path):
    root = make_tree(tmp_path)
    write_text(root / TRAIN / "annotations" / "0000001_00000_d_0000001.txt", [])
    records, skips = parse(root, strict=True)
    assert by_file(records)[f"{TRAIN}/images/0000001_00000_d_0000001.jpg"].boxes == []
    assert skips.entries == []


def test_annotation_without_image_is_counted(tmp_path):
    root = make_tree(tmp_path)
    orphan = write_text(root / TRAIN / "annotations" / "9999999.txt", ["1,1,4,4,1,4,0,0"])
    records, skips = parse(root)
    assert len(records) == 2
    assert skips.entries[0]["file"] == str(orphan) and "no image" in skips.entries[0]["reason"]


def test_non_utf8_annotation_is_an_image_skip(tmp_path):
    root = make_tree(tmp_path)
    label = root / TRAIN / "annotations" / "0000001_00000_d_0000001.txt"
    label.write_bytes(b"1,1,4,4,1,4,0,0\n\xff\xfe\n")
    records, skips = parse(root)
    assert len(records) == 1 and "not UTF-8" in skips.entries[0]["reason"]
