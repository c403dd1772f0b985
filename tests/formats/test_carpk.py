from pathlib import Path

import pytest

from remoteclip.formats import carpk
from remoteclip.formats.base import FormatError, SkipLog

from .fixtures import box_tuples, by_file, write_corrupt, write_image, write_text

DATA = Path("CARPK_devkit/data")
TRAIN_IMAGE = "20160331_NTU_00001"
TEST_IMAGE = "20161225_TPZ_00001"


def make_tree(root: Path) -> Path:
    for stem in (TRAIN_IMAGE, TEST_IMAGE):
        write_image(root / DATA / "Images" / f"{stem}.png")
    write_text(root / DATA / "Annotations" / f"{TRAIN_IMAGE}.txt", ["2 3 12 11 1", "20 10 35 22 1", "50 40 80 70 1"])
    write_text(root / DATA / "Annotations" / f"{TEST_IMAGE}.txt", ["1 1 5 5 1", ""], newline="\r\n")
    write_text(root / DATA / "ImageSets" / "train.txt", [TRAIN_IMAGE])
    write_text(root / DATA / "ImageSets" / "test.txt", [f"{TEST_IMAGE}.png"], bom=True)
    return root


def parse(root: Path, strict: bool = False, **options):
    skips = SkipLog(strict=strict)
    return list(carpk.parse(root, options, skips)), skips


def test_every_box_and_split_is_recovered(tmp_path):
    records, skips = parse(make_tree(tmp_path), splits=["train", "test"])
    found = by_file(records)
    train = found[f"{DATA}/Images/{TRAIN_IMAGE}.png"]
    assert (train.split, train.width, train.height) == ("train", 64, 48)
    assert box_tuples(train) == [("car", 2, 3, 10, 8), ("car", 20, 10, 15, 12), ("car", 50, 40, 14, 8)]
    test = found[f"{DATA}/Images/{TEST_IMAGE}.png"]
    assert (test.split, box_tuples(test)) == ("test", [("car", 1, 1, 4, 4)])
    assert skips.entries == []


def test_only_the_selected_splits_are_read(tmp_path):
    records, _ = parse(make_tree(tmp_path))
    assert [r.file_name for r in records] == [f"{DATA}/Images/{TRAIN_IMAGE}.png"]


def test_without_split_lists_every_annotation_is_train(tmp_path):
    records, _ = parse(make_tree(tmp_path), split_lists=None)
    assert sorted((r.file_name, r.split) for r in records) == [
        (f"{DATA}/Images/{TRAIN_IMAGE}.png", "train"),
        (f"{DATA}/Images/{TEST_IMAGE}.png", "train"),
    ]


def test_column_order_is_an_option(tmp_path):
    root = make_tree(tmp_path)
    write_text(root / DATA / "Annotations" / f"{TRAIN_IMAGE}.txt", ["1 2 3 10 8"])
    records, _ = parse(root, columns=["class", "left", "top", "width", "height"])
    assert box_tuples(records[0]) == [("car", 2, 3, 10, 8)]


@pytest.mark.parametrize(
    "line, reason",
    [
        ("2 3 12 11", "expected 5 fields, got 4"),
        ("2 3 12 11 1 0", "expected 5 fields, got 6"),
        ("2 3 x 11 1", "not a number: 'x'"),
        ("2 3 12 11 2", "class id '2' is not in the class table (1 car)"),
        ("2 3 1 11 1", "negative size"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, line, reason):
    root = make_tree(tmp_path)
    label = write_text(root / DATA / "Annotations" / f"{TRAIN_IMAGE}.txt", ["2 3 12 11 1", line])
    with pytest.raises(FormatError) as err:
        parse(root, strict=True)
    assert str(err.value).startswith(f"{label}:2: ") and reason in str(err.value)
    records, skips = parse(root)
    assert box_tuples(records[0]) == [("car", 2, 3, 10, 8)]
    assert [(e["what"], e["line"]) for e in skips.entries] == [("object", 2)]


def test_float_class_id_is_accepted(tmp_path):
    root = make_tree(tmp_path)
    write_text(root / DATA / "Annotations" / f"{TRAIN_IMAGE}.txt", ["2.0 3.5 12 11 1.0"])
    records, _ = parse(root, strict=True)
    assert box_tuples(records[0]) == [("car", 2, 3.5, 10, 7.5)]


def test_corrupt_image_is_an_image_skip(tmp_path):
    root = make_tree(tmp_path)
    image = write_corrupt(root / DATA / "Images" / f"{TRAIN_IMAGE}.png")
    records, skips = parse(root)
    assert records == []
    assert skips.entries[0]["file"] == str(image) and "unreadable image" in skips.entries[0]["reason"]
    with pytest.raises(FormatError, match="unreadable image"):
        parse(root, strict=True)


def test_empty_annotation_file_is_an_image_without_objects(tmp_path):
    root = make_tree(tmp_path)
    write_text(root / DATA / "Annotations" / f"{TRAIN_IMAGE}.txt", [])
    records, skips = parse(root, strict=True)
    assert [r.boxes for r in records] == [[]]


def test_listed_image_without_annotation_or_file_is_counted(tmp_path):
    root = make_tree(tmp_path)
    write_text(root / DATA / "ImageSets" / "train.txt", [TRAIN_IMAGE, "no_label", TEST_IMAGE])
    (root / DATA / "Images" / f"{TEST_IMAGE}.png").unlink()
    records, skips = parse(root)
    assert len(records) == 1
    reasons = [e["reason"] for e in skips.entries]
    assert "annotation file for image 'no_label' (train) missing" in reasons[0]
    assert f"no image named {TEST_IMAGE!r}" in reasons[1]


def test_missing_split_list_raises(tmp_path):
    root = make_tree(tmp_path)
    with pytest.raises(FormatError, match="split list missing"):
        parse(root, splits=["val"])
