"""RSOD is Pascal-VOC in one folder per class (`aircraft/Annotation/xml/*.xml` beside
`aircraft/JPEGImages/`): voc.py reads it through glob options, no module of its own."""

from pathlib import Path

import pytest

from remoteclip.formats import voc
from remoteclip.formats.base import FormatError, SkipLog

from .fixtures import box_tuples, by_file, voc_xml, write_image, write_text
from .fixtures import voc_object as obj

OPTIONS = {"annotations": "*/Annotation/xml/*.xml", "images": ["*/JPEGImages"]}
CLASS_FOLDERS = ["aircraft", "oiltank", "overpass", "playground"]  # folder name = class token


def make_tree(root: Path) -> Path:
    boxes = [(2, 3, 12, 11), (20, 10, 35, 22), (50, 40, 80, 70)]
    for folder in CLASS_FOLDERS:
        stem = f"{folder}_1"
        count = 3 if folder == "aircraft" else 2
        write_image(root / folder / "JPEGImages" / f"{stem}.jpg")
        write_text(
            root / folder / "Annotation" / "xml" / f"{stem}.xml",
            [voc_xml(f"{stem}.jpg", [obj(folder, b) for b in boxes[:count]])],
        )
    # the per-class txt labels some copies carry are not read
    write_text(root / "aircraft" / "Annotation" / "labels" / "aircraft_1.txt", ["aircraft_1.jpg aircraft 2 3 12 11"])
    return root


def parse(root: Path, strict: bool = False, **options):
    skips = SkipLog(strict=strict)
    return list(voc.parse(root, {**OPTIONS, **options}, skips)), skips


def test_every_box_in_every_class_folder_is_recovered(tmp_path):
    records, skips = parse(make_tree(tmp_path))
    found = by_file(records)
    assert sorted(found) == [f"{c}/JPEGImages/{c}_1.jpg" for c in sorted(CLASS_FOLDERS)]
    assert box_tuples(found["aircraft/JPEGImages/aircraft_1.jpg"]) == [
        ("plane", 2, 3, 10, 8),
        ("plane", 20, 10, 15, 12),
        ("plane", 50, 40, 14, 8),
    ]
    assert [b.category for b in found["oiltank/JPEGImages/oiltank_1.jpg"].boxes] == ["storage tank"] * 2
    assert [b.category for b in found["overpass/JPEGImages/overpass_1.jpg"].boxes] == ["overpass"] * 2
    assert [b.category for b in found["playground/JPEGImages/playground_1.jpg"].boxes] == ["playground"] * 2
    assert skips.entries == []


def test_xml_naming_an_image_of_another_folder_is_found_by_name(tmp_path):
    root = make_tree(tmp_path)
    (root / "oiltank" / "JPEGImages" / "oiltank_1.jpg").rename(root / "aircraft" / "JPEGImages" / "oiltank_1.jpg")
    records, skips = parse(root, strict=True)
    assert "aircraft/JPEGImages/oiltank_1.jpg" in by_file(records)


def test_missing_image_is_an_image_skip(tmp_path):
    root = make_tree(tmp_path)
    (root / "overpass" / "JPEGImages" / "overpass_1.jpg").unlink()
    xml = root / "overpass" / "Annotation" / "xml" / "overpass_1.xml"
    with pytest.raises(FormatError, match="image 'overpass_1.jpg' not found"):
        parse(root, strict=True)
    records, skips = parse(root)
    assert len(records) == 3 and [(e["what"], e["file"]) for e in skips.entries] == [("image", str(xml))]


def test_missing_name_is_an_object_skip(tmp_path):
    root = make_tree(tmp_path)
    xml = write_text(
        root / "playground" / "Annotation" / "xml" / "playground_1.xml",
        [voc_xml("playground_1.jpg", [obj("playground", (1, 1, 5, 5)), obj("", (1, 1, 5, 5))])],
    )
    records, skips = parse(root)
    assert len(by_file(records)["playground/JPEGImages/playground_1.jpg"].boxes) == 1
    assert skips.entries[0]["file"] == str(xml) and "has no <name>" in skips.entries[0]["reason"]
