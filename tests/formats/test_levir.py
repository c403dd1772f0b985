"""LEVIR's real file layout is unverified; these tests pin the believed default
(`class_id xmin ymin xmax ymax`) and show that every guess can be changed by options."""

from pathlib import Path

import pytest

from remoteclip.formats import levir
from remoteclip.formats.base import FormatError, SkipLog
from remoteclip.formats.columns import check_columns

from .fixtures import box_tuples, by_file, write_corrupt, write_image, write_text


def make_tree(root: Path) -> Path:
    write_image(root / "images" / "train_1.jpg")
    write_text(root / "labels" / "train_1.txt", ["1 2 3 12 11", "2 20 10 35 22", "3 50 40 80 70"])
    write_image(root / "images" / "train_2.jpg")
    write_text(root / "labels" / "train_2.txt", ["3 1 1 5 5", ""], newline="\r\n", bom=True)
    return root


def parse(root: Path, strict: bool = False, **options):
    skips = SkipLog(strict=strict)
    return list(levir.parse(root, options, skips)), skips


def test_every_box_and_class_is_recovered(tmp_path):
    records, skips = parse(make_tree(tmp_path))
    found = by_file(records)
    assert box_tuples(found["images/train_1.jpg"]) == [
        ("plane", 2, 3, 10, 8),
        ("ship", 20, 10, 15, 12),
        ("storage tank", 50, 40, 14, 8),
    ]
    assert box_tuples(found["images/train_2.jpg"]) == [("storage tank", 1, 1, 4, 4)]
    assert skips.entries == []


def test_other_column_order_separator_and_layout(tmp_path):
    # images and labels side by side, comma-separated, box first, class names in the file
    write_image(tmp_path / "all" / "a.png")
    write_text(tmp_path / "all" / "a.txt", ["2,3,10,8,ignored,ship"])
    records, _ = parse(
        tmp_path,
        labels="all/*.txt",
        images=["all"],
        separator=",",
        classes=None,
        columns=["left", "top", "width", "height", "-", "class"],
    )
    assert [(r.file_name, box_tuples(r)) for r in records] == [("all/a.png", [("ship", 2, 3, 10, 8)])]


@pytest.mark.parametrize(
    "columns, reason",
    [
        (["class", "xmin", "ymin", "xmax"], "need 'class' and either"),
        (["xmin", "ymin", "xmax", "ymax"], "need 'class'"),
        (["class", "x", "y", "xmax", "ymax"], "unknown column names"),
        (["class", "xmin", "ymin", "xmax", "ymax", "xmin"], "name a column twice"),
        (["class", "xmin", "ymin", "xmax", "ymax", "width"], "mix corner and width/height"),
    ],
)
def test_wrong_column_option_is_refused(columns, reason):
    with pytest.raises(ValueError, match=reason):
        check_columns(columns)


@pytest.mark.parametrize(
    "line, reason",
    [
        ("1 2 3 12", "expected 5 fields, got 4"),
        ("1 2 3 12 y", "not a number: 'y'"),
        ("4 2 3 12 11", "class id '4' is not in the class table (1 plane, 2 ship, 3 oil tank)"),
        ("1 70 60 80 70", "lies outside the 64x48 image"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, line, reason):
    root = make_tree(tmp_path)
    label = write_text(root / "labels" / "train_1.txt", [line, "1 2 3 12 11"])
    with pytest.raises(FormatError) as err:
        parse(root, strict=True)
    assert str(err.value).startswith(f"{label}:1: ") and reason in str(err.value)
    records, skips = parse(root)
    assert box_tuples(by_file(records)["images/train_1.jpg"]) == [("plane", 2, 3, 10, 8)]
    assert [(e["what"], e["file"], e["line"]) for e in skips.entries] == [("object", str(label), 1)]


def test_corrupt_image_is_an_image_skip(tmp_path):
    root = make_tree(tmp_path)
    image = write_corrupt(root / "images" / "train_2.jpg")
    records, skips = parse(root)
    assert [r.file_name for r in records] == ["images/train_1.jpg"]
    assert skips.entries[0]["file"] == str(image)
    with pytest.raises(FormatError, match="unreadable image"):
        parse(root, strict=True)


def test_empty_annotation_file_is_an_image_without_objects(tmp_path):
    root = make_tree(tmp_path)
    write_text(root / "labels" / "train_2.txt", [])
    records, skips = parse(root, strict=True)
    assert by_file(records)["images/train_2.jpg"].boxes == []


def test_label_without_image_is_counted(tmp_path):
    root = make_tree(tmp_path)
    write_text(root / "labels" / "train_3.txt", ["1 2 3 12 11"])
    records, skips = parse(root)
    assert len(records) == 2 and "no image with this name" in skips.entries[0]["reason"]
