"""UCM-Captions (numbered .tif images, train/val/test) and RSITMD (no val, extra `keywords`)
through karpathy.py."""

import json
from pathlib import Path

import pytest

from remoteclip.formats import karpathy
from remoteclip.formats.base import FormatError, SkipLog

from .fixtures import write_image

UCM_OPTIONS = {"annotations": "dataset.json", "images": "imgs"}
RSITMD_OPTIONS = {"annotations": "dataset_RSITMD.json", "images": "images"}


def sentences(imgid: int, texts: list[str]) -> list[dict]:
    return [
        {"tokens": t.rstrip(" .").split(), "raw": t, "imgid": imgid, "sentid": imgid * 5 + i}
        for i, t in enumerate(texts)
    ]


def image_entry(imgid: int, filename: str, split: str, texts: list[str], **extra) -> dict:
    return {
        "filename": filename,
        "imgid": imgid,
        "split": split,
        "sentids": [imgid * 5 + i for i in range(len(texts))],
        "sentences": sentences(imgid, texts),
        **extra,
    }


def make_ucm(root: Path, images: list | None = None) -> Path:
    for number in range(1, 5):
        write_image(root / "imgs" / f"{number}.tif", size=(32, 32))
    repeated = [
        "There is a piece of farmland .",
        "There is a piece of farmland .",
        "Many crops in the field .",
        "A farmland with crops .",
        "Some green crops .",
    ]
    if images is None:
        images = [
            image_entry(0, "1.tif", "train", repeated),
            image_entry(1, "2.tif", "train", ["A plane is parked ."] * 5),
            image_entry(2, "3.tif", "val", ["A river runs ."] * 5),
            image_entry(3, "4.tif", "test", ["A beach by the sea ."] * 5),
        ]
    (root / "dataset.json").write_text(json.dumps({"images": images, "dataset": "ucm"}))
    return root


def make_rsitmd(root: Path) -> Path:
    write_image(root / "images" / "airport_1.tif", size=(32, 32))
    write_image(root / "images" / "boat_12.tif", size=(32, 32))
    images = [
        image_entry(0, "airport_1.tif", "train", ["Planes at the airport ."] * 5, keywords=["airport", "plane"]),
        image_entry(1, "boat_12.tif", "test", ["Boats on the water ."] * 5, keywords=["boat"]),
    ]
    # RSITMD's file is written with a BOM by some copies
    (root / "dataset_RSITMD.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"images": images}).encode())
    return root


def parse(root: Path, options: dict, strict: bool = False, **more):
    skips = SkipLog(strict=strict)
    return list(karpathy.parse(root, {**options, **more}, skips)), skips


def test_ucm_numbered_tif_images_and_their_captions(tmp_path):
    items, skips = parse(make_ucm(tmp_path), UCM_OPTIONS)
    assert [(i["image"], i["split"]) for i in items] == [("imgs/1.tif", "train"), ("imgs/2.tif", "train")]
    # duplicated captions are kept as the file has them; deduplication is a later stage's job
    assert items[0]["captions"][:2] == ["There is a piece of farmland ."] * 2
    assert len(items[0]["captions"]) == 5
    assert skips.entries == []


def test_ucm_splits_are_selectable(tmp_path):
    items, _ = parse(make_ucm(tmp_path), UCM_OPTIONS, splits=["val", "test"])
    assert [(i["image"], i["split"]) for i in items] == [("imgs/3.tif", "val"), ("imgs/4.tif", "test")]


def test_rsitmd_without_val_and_with_keywords(tmp_path):
    root = make_rsitmd(tmp_path)
    items, skips = parse(root, RSITMD_OPTIONS, splits=["train", "val"])
    assert [(i["image"], i["split"]) for i in items] == [("images/airport_1.tif", "train")]
    assert set(items[0]) == {"image", "captions", "split"}
    items, _ = parse(root, RSITMD_OPTIONS, splits=["test"])
    assert [i["image"] for i in items] == ["images/boat_12.tif"]
    assert skips.entries == []


def test_tokens_stand_in_for_a_missing_raw(tmp_path):
    entry = image_entry(0, "1.tif", "train", ["A farm ."])
    del entry["sentences"][0]["raw"]
    items, _ = parse(make_ucm(tmp_path, [entry]), UCM_OPTIONS, strict=True)
    assert items[0]["captions"] == ["A farm"]


@pytest.mark.parametrize(
    "entry, reason",
    [
        ({"imgid": 9, "split": "train", "sentences": sentences(9, ["x ."])}, "images[1] has no 'filename'"),
        (image_entry(9, "2.tif", "train", []), "images[1] (2.tif) has no sentences"),
        (image_entry(9, "99.tif", "train", ["A lake ."]), "image file '99.tif' not found"),
    ],
)
def test_bad_entry_is_an_image_skip(tmp_path, entry, reason):
    root = make_ucm(tmp_path, [image_entry(0, "1.tif", "train", ["A farm ."]), entry])
    with pytest.raises(FormatError) as err:
        parse(root, UCM_OPTIONS, strict=True)
    assert str(err.value) == f"{root / 'dataset.json'}: {reason}"
    items, skips = parse(root, UCM_OPTIONS)
    assert [i["image"] for i in items] == ["imgs/1.tif"]
    assert [(e["what"], e["reason"]) for e in skips.entries] == [("image", reason)]


def test_blank_captions_are_counted_caption_skips(tmp_path):
    entry = image_entry(0, "1.tif", "train", ["A farm .", "", "   ", "Crops ."])
    entry["sentences"].append("not an object")
    root = make_ucm(tmp_path, [entry, image_entry(1, "2.tif", "train", ["", " "])])
    items, skips = parse(root, UCM_OPTIONS)
    assert [(i["image"], i["captions"]) for i in items] == [("imgs/1.tif", ["A farm .", "Crops ."])]
    assert [(e["what"], e["reason"]) for e in skips.entries] == [
        ("caption", "images[0] (1.tif) sentences[1]: blank caption"),
        ("caption", "images[0] (1.tif) sentences[2]: blank caption"),
        ("caption", "images[0] (1.tif) sentences[4]: not a sentence object"),
        ("caption", "images[1] (2.tif) sentences[0]: blank caption"),
        ("caption", "images[1] (2.tif) sentences[1]: blank caption"),
        ("image", "images[1] (2.tif) has only blank captions"),
    ]
    with pytest.raises(FormatError, match=r"dataset.json: images\[0\] \(1.tif\) sentences\[1\]: blank caption"):
        parse(root, UCM_OPTIONS, strict=True)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "not valid JSON"),
        (b'{"images": [', "not valid JSON"),
        (b'[{"filename": "1.tif"}]', "expected an object with an 'images' list"),
    ],
)
def test_unusable_caption_file_raises(tmp_path, content, reason):
    root = make_ucm(tmp_path)
    (root / "dataset.json").write_bytes(content)
    with pytest.raises(FormatError, match=reason):
        parse(root, UCM_OPTIONS)


def test_missing_caption_file_raises(tmp_path):
    with pytest.raises(FormatError, match="caption file missing"):
        parse(tmp_path, UCM_OPTIONS)
