"""Every parser against the synthetic world's ground truth: the same files, every box and
class recovered (polygons become their horizontal bounding boxes)."""

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from conftest import synthesize_dataset
from remoteclip.formats import SkipLog, folders, get_parser, karpathy
from remoteclip.formats.masks import ISPRS_PALETTE, LOVEDA_VALUES
from remoteclip.m2b import mask_to_boxes
from remoteclip.vocabulary import canonical


def as_boxes(records):
    return {
        r.file_name: sorted((b.category, *[round(v, 1) for v in (b.x, b.y, b.w, b.h)]) for b in r.boxes)
        for r in records
    }


def truth_boxes(truth):
    return {f: sorted((canonical(c), *[round(v, 1) for v in box]) for c, box in boxes) for f, boxes in truth.items()}


def test_dota_with_and_without_headers(tmp_path):
    truth = synthesize_dataset(
        tmp_path, "dota", 24, splits={"train": 0.75, "val": 0.25}, options={"header_fraction": 0.5}
    )
    headers = [p.read_text().startswith("imagesource") for p in tmp_path.glob("*/labelTxt/*.txt")]
    assert any(headers) and not all(headers)
    skips = SkipLog(strict=True)
    records = list(get_parser("dota")(tmp_path, {"splits": ["train", "val"]}, skips))
    assert as_boxes(records) == truth_boxes(truth)
    assert sum(len(v) for v in truth.values()) > 50


def test_dior_voc(tmp_path):
    truth = synthesize_dataset(tmp_path, "dior", 20)
    records = list(get_parser("voc")(tmp_path, {}, SkipLog(strict=True)))
    assert as_boxes(records) == truth_boxes(truth)
    assert {r.width for r in records} == {128}


def test_isaid_instances_are_polygon_boxes(tmp_path):
    truth = synthesize_dataset(tmp_path, "isaid", 6, size=256)
    records = list(get_parser("coco")(tmp_path, {"boxes": "instances"}, SkipLog(strict=True)))
    assert as_boxes(records) == truth_boxes(truth)


def test_isaid_tiles_clip_polygon_boxes(tmp_path):
    truth = synthesize_dataset(tmp_path, "isaid", 3, size=256)
    records = list(get_parser("coco")(tmp_path, {"boxes": "instances", "tile": 128}, SkipLog(strict=True)))
    assert len(records) == 3 * 4
    for rec in records:
        tx, ty, tw, th = rec.crop
        expected = []
        for cat, (x, y, w, h) in truth[rec.file_name]:
            x0, y0, x1, y1 = max(x, tx), max(y, ty), min(x + w, tx + tw), min(y + h, ty + th)
            if x1 > x0 and y1 > y0:
                expected.append((canonical(cat), *[round(v, 1) for v in (x0 - tx, y0 - ty, x1 - x0, y1 - y0)]))
        assert sorted(expected) == as_boxes([rec])[rec.file_name]


def test_isaid_m2b_matches_rasterised_polygons(tmp_path):
    synthesize_dataset(tmp_path, "isaid", 4, size=256)
    data = json.loads((tmp_path / "train/Annotations/iSAID_train.json").read_text())
    names = {c["id"]: canonical(c["name"]) for c in data["categories"]}
    records = list(get_parser("coco")(tmp_path, {"tile": 128}, SkipLog(strict=True)))
    for img in data["images"]:
        per_class = {}
        for ann in (a for a in data["annotations"] if a["image_id"] == img["id"]):
            rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], img["height"], img["width"]))
            m = mask_utils.decode(rle).astype(bool)
            per_class[names[ann["category_id"]]] = per_class.get(names[ann["category_id"]], False) | m
        for rec in (r for r in records if r.file_name.endswith(img["file_name"])):
            tx, ty, tw, th = rec.crop
            expected = sorted(
                (cat, *box)
                for cat, m in per_class.items()
                for _, box in mask_to_boxes(m[ty : ty + th, tx : tx + tw].astype(np.int32), ignore=[0])
            )
            assert sorted((b.category, int(b.x), int(b.y), int(b.w), int(b.h)) for b in rec.boxes) == expected


def _oracle_from_label_image(classes, names, ignore, crop):
    tx, ty, tw, th = crop
    window = classes[ty : ty + th, tx : tx + tw]
    return sorted((names[v], *box) for v, box in mask_to_boxes(window, ignore=ignore))


def test_potsdam_rgb_masks_m2b(tmp_path):
    synthesize_dataset(tmp_path, "potsdam", 3, size=256)
    records = list(get_parser("rgb_mask")(tmp_path, {"tile": 128}, SkipLog(strict=True)))
    assert len(records) == 12
    colours = {tuple(c): n for n, c in ISPRS_PALETTE.items()}
    for rec in records:
        label = tmp_path / rec.file_name.replace("2_Ortho_RGB", "5_Labels_all").replace("_RGB.tif", "_label.tif")
        rgb = np.asarray(Image.open(label).convert("RGB"))
        names = sorted(colours.values())
        classes = np.zeros(rgb.shape[:2], np.int32)
        for colour, name in colours.items():
            classes[(rgb == colour).all(-1)] = names.index(name)
        ignore = [names.index(n) for n in ("impervious surfaces", "clutter", "boundary")]
        expected = _oracle_from_label_image(classes, names, ignore, rec.crop)
        assert sorted((b.category, int(b.x), int(b.y), int(b.w), int(b.h)) for b in rec.boxes) == expected
        assert {b.category for b in rec.boxes} <= {"building", "low vegetation", "tree", "car"}


def test_loveda_index_masks_ignore_nodata(tmp_path):
    synthesize_dataset(tmp_path, "loveda", 8, nodata=0.6, splits={"train": 0.5, "val": 0.5})
    records = list(
        get_parser("index_mask")(tmp_path, {"vocabulary": "loveda", "splits": ["train", "val"]}, SkipLog(strict=True))
    )
    assert len(records) == 8
    saw_nodata = False
    for rec in records:
        mask = np.asarray(Image.open(tmp_path / rec.file_name.replace("images_png", "masks_png")))
        saw_nodata |= bool((mask == 0).any())
        names = [canonical(LOVEDA_VALUES[v], family="loveda") for v in range(8)]
        expected = _oracle_from_label_image(mask.astype(np.int32), names, [0, 1], (0, 0, 128, 128))
        assert sorted((b.category, int(b.x), int(b.y), int(b.w), int(b.h)) for b in rec.boxes) == expected
        assert not {b.category for b in rec.boxes} & {"no data", "background"}
    assert saw_nodata


def test_karpathy_train_split_and_all_captions(tmp_path):
    synthesize_dataset(tmp_path, "karpathy", 20, splits={"train": 0.6, "val": 0.2, "test": 0.2})
    data = json.loads((tmp_path / "dataset_rsicd.json").read_text())
    items = list(karpathy.parse(tmp_path, {}, SkipLog(strict=True)))
    train = [i for i in data["images"] if i["split"] == "train"]
    assert [i["image"] for i in items] == [f"RSICD_images/{i['filename']}" for i in train]
    assert [i["captions"] for i in items] == [[s["raw"] for s in i["sentences"]] for i in train]
    test = list(karpathy.parse(tmp_path, {"splits": ["test"]}, SkipLog(strict=True)))
    assert len(test) == 4 and all(len(i["captions"]) == 5 for i in test)


def test_class_folders(tmp_path):
    truth = synthesize_dataset(tmp_path, "class_folders", 34)
    classes = folders.scan(tmp_path)
    assert len(classes) == 17
    assert sorted(f for files in classes.values() for f in files) == sorted(truth)
    assert Counter(len(v) for v in classes.values()) == Counter({2: 17})


def test_count_set_labels_match_numbers(tmp_path):
    synthesize_dataset(tmp_path, "count", 14, splits={"val": 1.0})
    items = json.loads((tmp_path / "remotecount.json").read_text())
    records = {r.file_name: r for r in get_parser("dota")(tmp_path, {"splits": ["val"]}, SkipLog(strict=True))}
    for item in items:
        counts = Counter(b.category for b in records[item["image"]].boxes)
        assert counts[item["category"]] == item["count"]
        assert 1 <= item["count"] <= 10


def test_synthesis_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    synthesize_dataset(a, "dota", 6)
    synthesize_dataset(b, "dota", 6)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


@pytest.mark.parametrize("workers", [2])
def test_parallel_rendering_gives_identical_files(tmp_path, workers):
    from remoteclip.synthetic import SynthSpec, synthesize

    spec = SynthSpec(name="p", writer="class_folders", images=8)
    synthesize(spec, tmp_path / "one", workers=1, progress=False)
    synthesize(spec, tmp_path / "two", workers=workers, progress=False)
    for f in (tmp_path / "one").rglob("*.jpg"):
        assert f.read_bytes() == (tmp_path / "two" / f.relative_to(tmp_path / "one")).read_bytes()
