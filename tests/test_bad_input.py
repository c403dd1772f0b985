"""Bad input: a clear error naming the file (and line), or a counted skip that the
summary shows. Nothing is dropped silently."""

import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import synthesize_dataset
from remoteclip import convert
from remoteclip.config import dataset_spec
from remoteclip.formats import FormatError, SkipLog, get_parser, karpathy
from remoteclip.imageio import image_size


@pytest.fixture
def dota(tmp_path):
    root = tmp_path / "dota"
    synthesize_dataset(root, "dota", 4, options={"header_fraction": 0.0})
    return root


def _first_label(root):
    return sorted((root / "train/labelTxt").glob("*.txt"))[1]


def test_malformed_dota_line_names_file_and_line(dota):
    label = _first_label(dota)
    lines = label.read_text().splitlines()
    lines.insert(1, "10 20 30 40 plane")
    label.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=rf"{label.name}:2: expected 8 coordinates"):
        list(get_parser("dota")(dota, {}, SkipLog(strict=True)))
    skips = SkipLog()
    records = list(get_parser("dota")(dota, {}, skips))
    assert len(records) == 4
    assert skips.entries == [
        {
            "what": "object",
            "file": str(label),
            "line": 2,
            "reason": "expected 8 coordinates, a class and a difficult flag, got 5 fields",
        }
    ]
    kept = next(r for r in records if r.file_name.endswith(label.stem + ".png"))
    assert len(kept.boxes) == len(lines) - 1


@pytest.mark.parametrize(
    "line, message",
    [
        ("1 2 3 4 5 6 x 8 plane 0", "non-numeric coordinate"),
        ("1 2 3 4 5 6 7 8 plane 2", "difficult flag must be 0 or 1"),
        ("500 500 600 500 600 600 500 600 plane 0", "lies outside"),
    ],
)
def test_other_dota_errors(dota, line, message):
    label = _first_label(dota)
    label.write_text(line + "\n")
    with pytest.raises(FormatError, match=message):
        list(get_parser("dota")(dota, {}, SkipLog(strict=True)))


def test_empty_dota_file_is_an_image_without_boxes_counted_by_b2c(dota, tmp_path, b2c_settings):
    _first_label(dota).write_text("")
    spec = dataset_spec("dota", {"group": "DET", "format": "dota", "root": str(dota)})
    convert.parse_dataset(spec, tmp_path / "a.json", tmp_path / "a.report.json")
    report = convert.b2c_dataset(
        spec,
        tmp_path / "a.json",
        tmp_path / "a.report.json",
        b2c_settings,
        tmp_path / "c.jsonl",
        tmp_path / "c.report.json",
    )
    assert report["images"] == 4 and report["skipped"]["no boxes (B2C needs at least one)"] >= 1
    assert report["captioned"] + report["skipped"]["no boxes (B2C needs at least one)"] == 4


def test_corrupt_image_is_a_counted_skip_in_the_summary(dota, tmp_path, b2c_settings):
    image = sorted((dota / "train/images").glob("*.png"))[0]
    image.write_bytes(image.read_bytes()[:40])
    with pytest.raises(FormatError, match=rf"{image.name}: unreadable image"):
        image_size(image)
    spec = dataset_spec("dota", {"group": "DET", "format": "dota", "root": str(dota)})
    parsed = convert.parse_dataset(spec, tmp_path / "a.json", tmp_path / "a.report.json")
    assert parsed["images"] == 3 and parsed["skipped"]["total"] == 1
    convert.b2c_dataset(
        spec,
        tmp_path / "a.json",
        tmp_path / "a.report.json",
        b2c_settings,
        tmp_path / "c.jsonl",
        tmp_path / "c.report.json",
    )
    summary = convert.summarize([tmp_path / "c.report.json"], tmp_path / "summary.json")
    reasons = summary["datasets"]["dota"]["skipped"]
    assert any(k.startswith("image: unreadable image") for k in reasons), reasons


def test_label_without_image(dota):
    (dota / "train/labelTxt/P9999.txt").write_text("")
    skips = SkipLog()
    list(get_parser("dota")(dota, {}, skips))
    assert skips.entries[0]["reason"] == "no image with this name"


@pytest.fixture
def dior(tmp_path):
    root = tmp_path / "dior"
    synthesize_dataset(root, "dior", 3)
    return root


def _xml(root):
    return sorted((root / "Annotations/Horizontal Bounding Boxes").glob("*.xml"))


def test_xml_missing_fields(dior):
    xml = _xml(dior)[0]
    text = xml.read_text()
    xml.write_text(re.sub(r"<xmin>\d+</xmin>", "", text, count=1))
    with pytest.raises(FormatError, match=rf"{xml.name}: <bndbox> has no <xmin>"):
        list(get_parser("voc")(dior, {}, SkipLog(strict=True)))
    xml.write_text(text.replace("<name>", "<label>").replace("</name>", "</label>"))
    skips = SkipLog()
    records = list(get_parser("voc")(dior, {}, skips))
    assert all("has no <name>" in e["reason"] for e in skips.entries) and len(records) == 3


def test_xml_without_size_reads_the_image_and_malformed_xml_is_skipped(dior):
    a, b = _xml(dior)[:2]
    a.write_text(a.read_text().replace("<width>128</width>", "<width>0</width>"))
    b.write_text("<annotation><filename>")
    skips = SkipLog()
    records = list(get_parser("voc")(dior, {}, skips))
    assert len(records) == 2 and records[0].width == 128
    assert skips.entries[0]["reason"].startswith("malformed XML")


def test_mask_colour_not_in_table(tmp_path):
    root = tmp_path / "potsdam"
    synthesize_dataset(root, "potsdam", 2, size=128)
    label = sorted((root / "5_Labels_all").glob("*.tif"))[0]
    arr = np.asarray(Image.open(label)).copy()
    arr[5:7, 5:9] = (12, 34, 56)
    Image.fromarray(arr).save(label)
    with pytest.raises(FormatError, match=rf"{label.name}: 8 pixels have colours not in the palette: \(12, 34, 56\)"):
        list(get_parser("rgb_mask")(root, {}, SkipLog(strict=True)))
    skips = SkipLog()
    assert len(list(get_parser("rgb_mask")(root, {}, skips))) == 1
    assert skips.entries[0]["what"] == "image"


def test_index_mask_value_not_in_table_and_wrong_mode(tmp_path):
    root = tmp_path / "loveda"
    synthesize_dataset(root, "loveda", 2)
    masks = sorted(root.rglob("masks_png/*.png"))
    arr = np.asarray(Image.open(masks[0])).copy()
    arr[0, 0] = 9
    Image.fromarray(arr).save(masks[0])
    Image.fromarray(np.zeros((128, 128, 3), np.uint8)).save(masks[1])
    skips = SkipLog()
    assert list(get_parser("index_mask")(root, {}, skips)) == []
    reasons = sorted(e["reason"] for e in skips.entries)
    assert "index mask must be single-channel, got mode RGB" in reasons[0]
    assert "mask values [9] are not in the class table" in reasons[1]


def test_label_and_image_size_mismatch(tmp_path):
    root = tmp_path / "loveda"
    synthesize_dataset(root, "loveda", 1)
    mask = next(root.rglob("masks_png/*.png"))
    Image.fromarray(np.ones((64, 64), np.uint8)).save(mask)
    with pytest.raises(FormatError, match="label is 64x64 but image"):
        list(get_parser("index_mask")(root, {}, SkipLog(strict=True)))


def test_karpathy_errors(tmp_path):
    root = tmp_path / "rsicd"
    synthesize_dataset(root, "karpathy", 4)
    path = root / "dataset_rsicd.json"
    data = json.loads(path.read_text())
    data["images"][0]["sentences"] = []
    data["images"][1]["filename"] = "missing.jpg"
    path.write_text(json.dumps(data))
    skips = SkipLog()
    assert len(list(karpathy.parse(root, {}, skips))) == 2
    assert [e["reason"].split(" ")[-1] for e in skips.entries] == ["sentences", "found"]
    path.write_text("{not json")
    with pytest.raises(FormatError, match="dataset_rsicd.json: not valid JSON"):
        list(karpathy.parse(root, {}, SkipLog()))
    path.write_text("[]")
    with pytest.raises(FormatError, match="Karpathy format"):
        list(karpathy.parse(root, {}, SkipLog()))


def test_coco_unknown_category_and_missing_polygon(tmp_path):
    root = tmp_path / "isaid"
    synthesize_dataset(root, "isaid", 2)
    path = root / "train/Annotations/iSAID_train.json"
    data = json.loads(path.read_text())
    data["annotations"][0]["category_id"] = 99
    data["annotations"][1]["segmentation"] = []
    path.write_text(json.dumps(data))
    skips = SkipLog()
    list(get_parser("coco")(root, {}, skips))
    reasons = [e["reason"] for e in skips.entries]
    assert any("unknown category_id 99" in r for r in reasons)
    assert any("no usable polygon" in r for r in reasons)
    shutil.rmtree(root / "train/Annotations")
    with pytest.raises(FormatError, match="annotation file missing"):
        list(get_parser("coco")(root, {}, SkipLog()))


def test_blank_captions_are_counted_skips_in_the_caption_summary(tmp_path):
    root = tmp_path / "rsicd"
    synthesize_dataset(root, "karpathy", 4, splits={"train": 1.0})
    path = root / "dataset_rsicd.json"
    data = json.loads(path.read_text())
    data["images"][0]["sentences"][1]["raw"] = ""
    data["images"][0]["sentences"][1]["tokens"] = []
    data["images"][2]["sentences"][0]["raw"] = "  "
    data["images"][2]["sentences"][0]["tokens"] = []
    path.write_text(json.dumps(data))
    spec = dataset_spec(
        "rsicd", {"group": "RET", "format": "karpathy", "root": str(root), "options": {"images": "RSICD_images"}}
    )
    report = convert.ret_dataset(spec, tmp_path / "c.jsonl", tmp_path / "c.report.json")
    assert report["images"] == report["captioned"] == 4  # a skipped caption is not a skipped image
    assert report["skipped_total"] == 2
    summary = convert.summarize([tmp_path / "c.report.json"], tmp_path / "summary.json")
    reasons = summary["datasets"]["rsicd"]["skipped"]
    blank = {k: n for k, n in reasons.items() if k.startswith("caption: ") and k.endswith(": blank caption")}
    assert len(blank) == 2 and sum(blank.values()) == 2, reasons
    assert summary["total"]["skipped_total"] == 2


def test_hf_table_row_with_a_blank_caption_is_a_counted_skip_in_the_caption_summary(tmp_path):
    root = tmp_path / "hf"
    (root / "csv_file" / "train").mkdir(parents=True)
    (root / "csv_file" / "train" / "Ret-3_train.csv").write_text(
        "title\tfilename\na plane .\trsicd_1.png\n  \trsicd_1.png\n\trsicd_1.png\n"
    )
    (root / "data").mkdir()
    Image.new("RGB", (16, 16)).save(root / "data" / "rsicd_1.png")
    spec = dataset_spec("hf", {"group": "RET", "format": "hf_tsv", "root": str(root), "options": {"images": ["data"]}})
    report = convert.ret_dataset(spec, tmp_path / "c.jsonl", tmp_path / "c.report.json")
    assert report["images"] == report["captioned"] == 1 and report["captions"] == 1
    summary = convert.summarize([tmp_path / "c.report.json"], tmp_path / "summary.json")
    assert summary["datasets"]["hf"]["skipped"] == {"row: row has an empty caption": 2}
