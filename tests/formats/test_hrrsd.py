"""HRRSD is Pascal-VOC in `OPT2017/`: voc.py reads it with options, no module of its own."""

from pathlib import Path

import pytest

from remoteclip.formats import voc
from remoteclip.formats.base import FormatError, SkipLog

from .fixtures import box_tuples, by_file, voc_xml, write_corrupt, write_image, write_text
from .fixtures import voc_object as obj

OPTIONS = {
    "annotations": "OPT2017/Annotations/*.xml",
    "images": ["OPT2017/JPEGImages"],
    "split_lists": "OPT2017/ImageSets/Main/{split}.txt",
    "splits": ["train", "val"],
}


def make_tree(root: Path) -> Path:
    opt = root / "OPT2017"
    write_image(opt / "JPEGImages" / "00001.jpg")
    write_text(
        opt / "Annotations" / "00001.xml",
        [
            voc_xml(
                "00001.jpg",
                [
                    obj("T junction", (2, 3, 12, 11)),
                    obj("ground track field", (20, 10, 35, 22)),
                    obj("parking lot", (50, 40, 80, 70)),
                    obj("airplane", (1, 1, 5, 5)),
                ],
            )
        ],
    )
    write_image(opt / "JPEGImages" / "00002.jpg")
    write_text(opt / "Annotations" / "00002.xml", [voc_xml("00002.jpg", [obj("crossroad", (1, 1, 5, 5))])])
    write_image(opt / "JPEGImages" / "00003.jpg")
    write_text(opt / "Annotations" / "00003.xml", [voc_xml("00003.jpg", [obj("ship", (1, 1, 5, 5))])])
    # the YOLO-style labels HRRSD also ships; the VOC route does not read them
    write_text(opt / "labels" / "00001.txt", ["0 0.1 0.1 0.2 0.2"])
    write_text(opt / "ImageSets" / "Main" / "train.txt", ["00001"])
    write_text(opt / "ImageSets" / "Main" / "val.txt", ["00002"], newline="\r\n")
    write_text(opt / "ImageSets" / "Main" / "test.txt", ["00003"])
    return root


def parse(root: Path, strict: bool = False, **options):
    skips = SkipLog(strict=strict)
    return list(voc.parse(root, {**OPTIONS, **options}, skips)), skips


def test_every_box_and_class_with_spaces_is_recovered(tmp_path):
    records, skips = parse(make_tree(tmp_path))
    found = by_file(records)
    assert box_tuples(found["OPT2017/JPEGImages/00001.jpg"]) == [
        ("t junction", 2, 3, 10, 8),
        ("ground track field", 20, 10, 15, 12),
        ("parking lot", 50, 40, 14, 8),
        ("plane", 1, 1, 4, 4),
    ]
    assert found["OPT2017/JPEGImages/00001.jpg"].split == "train"
    assert (found["OPT2017/JPEGImages/00002.jpg"].split, box_tuples(found["OPT2017/JPEGImages/00002.jpg"])) == (
        "val",
        [("crossroad", 1, 1, 4, 4)],
    )
    assert "OPT2017/JPEGImages/00003.jpg" not in found
    assert skips.entries == []


def test_bad_object_is_an_object_skip(tmp_path):
    root = make_tree(tmp_path)
    xml = write_text(
        root / "OPT2017" / "Annotations" / "00002.xml",
        [
            voc_xml(
                "00002.jpg",
                [obj("crossroad", (1, 1, 5, 5)), "<object><name>ship</name></object>", obj("ship", (1, "x", 5, 5))],
            )
        ],
    )
    with pytest.raises(FormatError, match="object 'ship' has no <bndbox>"):
        parse(root, strict=True)
    records, skips = parse(root)
    assert box_tuples(by_file(records)["OPT2017/JPEGImages/00002.jpg"]) == [("crossroad", 1, 1, 4, 4)]
    assert [(e["what"], e["file"]) for e in skips.entries] == [("object", str(xml))] * 2
    assert "<ymin> is not a number: 'x'" in skips.entries[1]["reason"]


def test_corrupt_image_is_an_image_skip_even_with_a_size(tmp_path):
    root = make_tree(tmp_path)
    image = write_corrupt(root / "OPT2017" / "JPEGImages" / "00002.jpg")
    records, skips = parse(root)
    assert [r.file_name for r in records] == ["OPT2017/JPEGImages/00001.jpg"]
    assert skips.entries[0]["file"] == str(image) and "unreadable image" in skips.entries[0]["reason"]
    with pytest.raises(FormatError, match="unreadable image"):
        parse(root, strict=True)


def test_size_that_disagrees_with_the_image_is_an_image_skip(tmp_path):
    root = make_tree(tmp_path)
    write_text(root / "OPT2017" / "Annotations" / "00002.xml", [voc_xml("00002.jpg", [], width=48, height=64)])
    with pytest.raises(FormatError, match="<size> says 48x64 but 00002.jpg is 64x48"):
        parse(root, strict=True)


def test_malformed_or_empty_xml_is_an_image_skip(tmp_path):
    root = make_tree(tmp_path)
    write_text(root / "OPT2017" / "Annotations" / "00002.xml", [])
    with pytest.raises(FormatError, match="malformed XML"):
        parse(root, strict=True)
    records, skips = parse(root)
    assert len(records) == 1 and skips.entries[0]["what"] == "image"


def test_image_without_objects_is_kept(tmp_path):
    root = make_tree(tmp_path)
    write_text(root / "OPT2017" / "Annotations" / "00002.xml", [voc_xml("00002.jpg", [])])
    records, _ = parse(root, strict=True)
    assert by_file(records)["OPT2017/JPEGImages/00002.jpg"].boxes == []


def test_missing_split_list_raises(tmp_path):
    with pytest.raises(FormatError, match="split list missing"):
        parse(make_tree(tmp_path), splits=["trainval"])
