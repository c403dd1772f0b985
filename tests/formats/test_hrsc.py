from pathlib import Path

import pytest

from remoteclip.formats import hrsc
from remoteclip.formats.base import FormatError, SkipLog

from .fixtures import box_tuples, by_file, write_corrupt, write_image, write_text

ANNOTATIONS = Path("FullDataSet/Annotations")
IMAGES = Path("FullDataSet/AllImages")


def ship(object_id: int, class_id: int, box: tuple, difficult: int = 0) -> str:
    """One <HRSC_Object> with the oriented mbox_* fields the real files carry."""
    x0, y0, x1, y1 = box
    return f"""
    <HRSC_Object>
      <Object_ID>{object_id}</Object_ID><Class_ID>{class_id}</Class_ID><Object_NO>{object_id}</Object_NO>
      <truncated>0</truncated><difficult>{difficult}</difficult>
      <box_xmin>{x0}</box_xmin><box_ymin>{y0}</box_ymin><box_xmax>{x1}</box_xmax><box_ymax>{y1}</box_ymax>
      <mbox_cx>{(x0 + x1) / 2}</mbox_cx><mbox_cy>{(y0 + y1) / 2}</mbox_cy><mbox_w>{x1 - x0}</mbox_w>
      <mbox_h>{y1 - y0}</mbox_h><mbox_ang>-0.2144308</mbox_ang>
      <segmented>0</segmented><seg_color></seg_color><header_x>{x1}</header_x><header_y>{y0}</header_y>
    </HRSC_Object>"""


def image_xml(img_id: int, objects: list[str], width: int = 64, height: int = 48) -> str:
    annotated = 1 if objects else 0
    return f"""<?xml version="1.0" encoding="utf-8"?>
<HRSC_Image>
  <Img_CusType>sealand</Img_CusType><Img_ID>{img_id}</Img_ID><Place_ID>100000001</Place_ID>
  <Img_FileName>{img_id}</Img_FileName><Img_FileFmt>bmp</Img_FileFmt><Img_Date>1900-01-01</Img_Date>
  <Img_Resolution>1.07</Img_Resolution><Img_Resolution_Layer>18</Img_Resolution_Layer>
  <Img_SizeWidth>{width}</Img_SizeWidth><Img_SizeHeight>{height}</Img_SizeHeight><Img_SizeDepth>3</Img_SizeDepth>
  <Annotated>{annotated}</Annotated>
  <HRSC_Objects>{"".join(objects)}
  </HRSC_Objects>
</HRSC_Image>
"""


def make_tree(root: Path) -> Path:
    objects = [
        ship(100000001, 100000013, (2, 3, 12, 11)),
        ship(100000002, 100000027, (20, 10, 35, 22)),
        ship(100000003, 100000022, (50, 40, 80, 70), difficult=1),
    ]
    write_image(root / IMAGES / "100000001.bmp")
    write_text(root / ANNOTATIONS / "100000001.xml", [image_xml(100000001, objects)])
    write_image(root / IMAGES / "100000002.bmp")
    write_text(root / ANNOTATIONS / "100000002.xml", [image_xml(100000002, [])])
    write_text(root / "ImageSets" / "train.txt", ["100000001"])
    write_text(root / "ImageSets" / "test.txt", ["100000002"])
    return root


def parse(root: Path, strict: bool = False, **options):
    skips = SkipLog(strict=strict)
    return list(hrsc.parse(root, options, skips)), skips


def test_every_ship_is_recovered_from_the_horizontal_box(tmp_path):
    records, skips = parse(make_tree(tmp_path))
    found = by_file(records)
    first = found[f"{IMAGES}/100000001.bmp"]
    assert (first.width, first.height) == (64, 48)
    assert box_tuples(first) == [("ship", 2, 3, 10, 8), ("ship", 20, 10, 15, 12), ("ship", 50, 40, 14, 8)]
    assert [b.difficult for b in first.boxes] == [False, False, True]
    assert skips.entries == []


def test_non_annotated_image_is_a_record_without_boxes(tmp_path):
    records, _ = parse(make_tree(tmp_path), strict=True)
    assert by_file(records)[f"{IMAGES}/100000002.bmp"].boxes == []


def test_class_id_filter_and_difficult_option(tmp_path):
    root = make_tree(tmp_path)
    records, _ = parse(root, exclude_class_ids=[100000027, "100000022"])
    assert box_tuples(by_file(records)[f"{IMAGES}/100000001.bmp"]) == [("ship", 2, 3, 10, 8)]
    records, _ = parse(root, skip_difficult=True)
    assert len(by_file(records)[f"{IMAGES}/100000001.bmp"].boxes) == 2


def test_split_lists_select_images(tmp_path):
    records, _ = parse(make_tree(tmp_path), split_lists="ImageSets/{split}.txt", splits=["test"])
    assert [(r.file_name, r.split) for r in records] == [(f"{IMAGES}/100000002.bmp", "test")]


def test_category_goes_through_the_vocabulary(tmp_path):
    records, _ = parse(make_tree(tmp_path), category="Warship", aliases={"warship": "ship"})
    assert {b.category for r in records for b in r.boxes} == {"ship"}


@pytest.mark.parametrize(
    "replacement, reason",
    [
        ("", "object 100000001 has no <box_xmax>"),
        ("<box_xmax>twelve</box_xmax>", "not a number: 'twelve'"),
        ("<box_xmax>1</box_xmax>", "negative size"),
    ],
)
def test_bad_object_is_an_object_skip(tmp_path, replacement, reason):
    root = make_tree(tmp_path)
    xml = ANNOTATIONS / "100000001.xml"
    (root / xml).write_text((root / xml).read_text().replace("<box_xmax>12</box_xmax>", replacement, 1))
    with pytest.raises(FormatError) as err:
        parse(root, strict=True)
    assert str(err.value).startswith(f"{root / xml}: ") and reason in str(err.value)
    records, skips = parse(root)
    assert len(by_file(records)[f"{IMAGES}/100000001.bmp"].boxes) == 2
    assert [(e["what"], e["file"]) for e in skips.entries] == [("object", str(root / xml))]


@pytest.mark.parametrize(
    "content, reason",
    [
        ("", "malformed XML"),
        ("<HRSC_Image><Img_ID>100000002</Img_ID>", "malformed XML"),
        ("<annotation><filename>100000002.bmp</filename></annotation>", "expected <HRSC_Image>"),
        (image_xml(100000002, [], width=640), "declares 640x48 but 100000002.bmp is 64x48"),
        (image_xml(100000009, []).replace("100000009", "nowhere"), "image 'nowhere' not found"),
    ],
)
def test_bad_file_is_an_image_skip(tmp_path, content, reason):
    root = make_tree(tmp_path)
    xml = write_text(root / ANNOTATIONS / "100000002.xml", [content] if content else [])
    if reason.startswith("image 'nowhere'"):
        (root / IMAGES / "100000002.bmp").unlink()
    with pytest.raises(FormatError, match=reason):
        parse(root, strict=True)
    records, skips = parse(root)
    assert [r.file_name for r in records] == [f"{IMAGES}/100000001.bmp"]
    assert [(e["what"], e["file"]) for e in skips.entries] == [("image", str(xml))]


def test_corrupt_image_is_an_image_skip(tmp_path):
    root = make_tree(tmp_path)
    image = write_corrupt(root / IMAGES / "100000002.bmp")
    records, skips = parse(root)
    assert len(records) == 1
    assert skips.entries[0]["file"] == str(image) and "unreadable image" in skips.entries[0]["reason"]
