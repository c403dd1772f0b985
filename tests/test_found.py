"""An empty stage is an error (remoteclip.found, through the parse and RET caption stages):
patterns that match nothing, a parse that keeps no image, and far fewer images than the
catalogue states stop the stage with a message naming the patterns tried, what lies under
the root and the option to set; an archive unpacked one folder too deep (`DOTA/DOTA/...`)
is read from there."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import REPO, SCHEMA
from formats.fixtures import write_image, write_text
from remoteclip import convert, found
from remoteclip.config import dataset_spec, dataset_specs, resolve_catalogue, validate
from remoteclip.errors import DataNotFoundError
from remoteclip.formats import CAPTION_PARSERS, LOCATORS, PARSER_OPTIONS, PARSERS

DOTA_LINES = ["imagesource:GoogleEarth", "gsd:0.146", "10 10 30 10 30 20 10 20 plane 0"]


def catalogue_spec(entry: str, root: Path, name: str | None = None, **config):
    """The dataset spec a workflow config `{name: {catalogue: entry, root: root, ...}}` gives."""
    name = name or entry
    cfg = validate({"datasets": {name: {"catalogue": entry, "root": str(root), **config}}}, SCHEMA)
    resolve_catalogue(cfg, REPO)
    return dataset_spec(name, cfg["datasets"][name])


def write_dota(root: Path, labels: str, stems=("P0000", "P0001"), split: str = "train") -> Path:
    """DOTA images under {split}/images/ and one label file per image in the `labels` folder."""
    for stem in stems:
        write_image(root / split / "images" / f"{stem}.png")
        write_text(root / split / labels / f"{stem}.txt", DOTA_LINES)
    return root


def write_karpathy(root: Path, images: str, splits: list[str], annotations: str = "dataset_rsicd.json") -> Path:
    entries = []
    for number, split in enumerate(splits):
        write_image(root / images / f"airport_{number}.jpg", size=(16, 16))
        entries.append(
            {
                "filename": f"airport_{number}.jpg",
                "imgid": number,
                "split": split,
                "sentences": [{"tokens": ["a", "plane"], "raw": "a plane .", "imgid": number, "sentid": 0}],
            }
        )
    write_text(root / annotations, [json.dumps({"images": entries, "dataset": "rsicd"})])
    return root


def parse(spec, tmp_path: Path) -> dict:
    return convert.parse_dataset(spec, tmp_path / "out" / "a.json", tmp_path / "out" / "a.report.json")


# ---- a: patterns that match nothing -------------------------------------------------------------


def test_official_dota_layout_against_the_catalogue_glob_names_pattern_files_and_option(tmp_path):
    # the official archives unpack to train/labelTxt-v1.0/labelTxt/; the catalogue reads torchgeo's copy
    root = write_dota(tmp_path / "DOTA", "labelTxt-v1.0/labelTxt")
    spec = catalogue_spec("DOTA", root)
    with pytest.raises(DataNotFoundError) as err:
        parse(spec, tmp_path)
    message = str(err.value)
    assert f"{root.absolute()}/train/annotations/version1.0/*.txt -> no match" in message
    assert "train/labelTxt-v1.0/labelTxt/  (2 files: P0000.txt, P0001.txt)" in message
    assert "train/images/  (2 files: P0000.png, P0001.png)" in message
    assert "datasets.DOTA.options.labels (now '{split}/annotations/version1.0/*.txt')" in message
    assert not (tmp_path / "out" / "a.json").exists()

    # the option the message names is the fix
    spec = catalogue_spec("DOTA", root, options={"labels": "{split}/labelTxt-v1.0/labelTxt/*.txt"}, images=None)
    assert parse(spec, tmp_path)["images"] == 2


@pytest.mark.parametrize("fmt", sorted(PARSERS) + sorted(CAPTION_PARSERS))
def test_every_format_stops_when_its_files_are_elsewhere(tmp_path, fmt):
    root = tmp_path / "d"
    write_image(root / "stray" / "x.png")
    write_text(root / "readme.txt", ["not a label"])
    spec = dataset_spec("d", {"group": "RET" if fmt in CAPTION_PARSERS else "DET", "format": fmt, "root": str(root)})
    stage = convert.ret_dataset if fmt in CAPTION_PARSERS else convert.parse_dataset
    with pytest.raises(DataNotFoundError) as err:
        stage(spec, tmp_path / "out.json", tmp_path / "out.report.json")
    message = str(err.value)
    first = LOCATORS[fmt][0]
    assert f"the {first} pattern matches no file" in message and f"  {first}: {root.absolute()}/" in message
    assert "stray/  (1 file: x.png)" in message and "./  (1 file: readme.txt)" in message
    assert f"datasets.d.options.{first} (now {PARSER_OPTIONS[fmt][first]!r})" in message


def test_labels_without_images_parse_to_nothing_and_stop_with_the_skips(tmp_path):
    root = write_dota(tmp_path / "dota", "labelTxt")
    for image in (root / "train" / "images").iterdir():
        image.rename(root / "train" / image.name)  # one folder too high
    spec = dataset_spec("dota", {"group": "DET", "format": "dota", "root": str(root)})
    with pytest.raises(DataNotFoundError) as err:
        parse(spec, tmp_path)
    message = str(err.value)
    assert "dataset dota: 0 images parsed." in message
    assert f"  images: {root.absolute()}/train/images -> 1 match, e.g. train/images/" in message
    assert "Skipped 2: image: no image with this name (2)" in message
    assert "train/  (2 files: P0000.png, P0001.png)" in message


def test_caption_split_that_is_not_in_the_file_stops_the_ret_stage(tmp_path):
    root = write_karpathy(tmp_path / "rsicd", "RSICD_images", ["val", "test"])
    spec = dataset_spec(
        "rsicd",
        {
            "group": "RET",
            "format": "karpathy",
            "root": str(root),
            "options": {"images": "RSICD_images", "splits": ["train"]},
        },
    )
    with pytest.raises(DataNotFoundError) as err:
        convert.ret_dataset(spec, tmp_path / "c.jsonl", tmp_path / "c.report.json")
    message = str(err.value)
    assert "dataset rsicd: 0 images parsed." in message
    assert f"  annotations: {root.absolute()}/dataset_rsicd.json -> 1 match" in message
    assert not (tmp_path / "c.jsonl").exists()


# ---- b: far fewer images than the catalogue states ---------------------------------------------------


def test_far_fewer_images_than_stated_stop_the_parse(tmp_path):
    root = write_dota(tmp_path / "DOTA", "annotations/version1.0", stems=("P0000", "P0001", "P0002"))
    with pytest.raises(DataNotFoundError) as err:
        parse(catalogue_spec("DOTA", root), tmp_path)
    message = str(err.value)
    assert (
        "dataset DOTA: 3 images parsed, under 50% of the 1,411 stated for split train "
        "(datasets.md 2.1: Splits: train 1,411 / val 458 / test 937 [third-party])"
    ) in message
    assert f"  labels: {root.absolute()}/train/annotations/version1.0/*.txt -> 3 matches" in message
    assert "set datasets.DOTA.images: null" in message
    # half of the stated count is enough
    assert parse(catalogue_spec("DOTA", root, images={"count": {"train": 6}}), tmp_path)["images"] == 3
    with pytest.raises(DataNotFoundError, match="3 images parsed, under 50% of the 7 stated"):
        parse(catalogue_spec("DOTA", root, images={"count": {"train": 7}}), tmp_path)


def test_tiles_of_one_image_count_once(tmp_path):
    root = tmp_path / "potsdam"
    spec = dataset_spec(
        "p", {"group": "SEG", "format": "rgb_mask", "root": str(root), "images": {"count": 3}, "options": {"tile": 16}}
    )
    write_image(root / "2_Ortho_RGB" / "top_potsdam_2_10_RGB.tif", size=(32, 32))
    label = np.zeros((32, 32, 3), np.uint8)
    label[:] = (0, 0, 255)  # building everywhere: four tiles with one box each
    (root / "5_Labels_all").mkdir(parents=True)
    Image.fromarray(label).save(root / "5_Labels_all" / "top_potsdam_2_10_label.tif")
    with pytest.raises(DataNotFoundError, match="1 image parsed, under 50% of the 3 stated for the whole dataset"):
        parse(spec, tmp_path)


def test_far_fewer_captioned_images_than_stated_stop_the_ret_stage(tmp_path):
    root = write_karpathy(tmp_path / "RSICD", "RSICD_images", ["train", "train", "test"])
    with pytest.raises(DataNotFoundError, match="2 images parsed, under 50% of the 8,734 stated for split train"):
        convert.ret_dataset(catalogue_spec("RSICD", root), tmp_path / "c.jsonl", tmp_path / "c.report.json")


def test_the_count_that_applies_follows_the_splits_read():
    def expected(entry, **config):
        return found.expected_images(catalogue_spec(entry, Path("/data"), **config))

    assert expected("DOTA") == (1411, "split train")
    assert expected("DOTA", options={"splits": ["val"]}) == (458, "split val")
    assert expected("DOTA", options={"splits": ["train", "val"]}) == (1869, "splits train + val")
    assert expected("LoveDA") == (2522 + 1669, "splits train + val")
    assert expected("VisDrone", options={"splits": ["test-challenge"]}) is None  # not stated
    assert expected("DIOR") == (23463, "the whole dataset")
    # a whole-dataset count does not apply once the config reads one split of it
    assert expected("DIOR", options={"split_lists": "ImageSets/Main/{split}.txt", "splits": ["train"]}) is None
    assert expected("DIOR", options={"split_lists": None}) == (23463, "the whole dataset")  # the entry's own
    assert expected("DOTA", images=None) is None  # turned off for a partial copy
    assert expected("LEVIR") is None and expected("Stanford-Drone") is None


def test_the_synthetic_demo_sets_state_no_count():
    config = validate(yaml.safe_load((REPO / "config" / "config.yaml").read_text()), SCHEMA)
    resolve_catalogue(config, REPO)
    specs = dataset_specs(config)
    assert specs and all(s.synthetic is not None and found.expected_images(s) is None for s in specs.values())


# ---- c: one folder too deep --------------------------------------------------------------------------


def test_archive_unpacked_one_folder_deeper_is_read_from_there(tmp_path, caplog, b2c_settings):
    root = tmp_path / "DOTA"
    write_dota(root / "DOTA", "annotations/version1.0")
    spec = catalogue_spec("DOTA", root, images=None)
    with caplog.at_level(logging.WARNING, logger="remoteclip.found"):
        report = parse(spec, tmp_path)
    assert report["images"] == 2
    assert f"the same patterns match one folder deeper, under {root / 'DOTA'}" in caplog.text
    coco = json.loads((tmp_path / "out" / "a.json").read_text())
    assert [i["file_name"] for i in coco["images"]] == ["DOTA/train/images/P0000.png", "DOTA/train/images/P0001.png"]
    convert.b2c_dataset(
        spec,
        tmp_path / "out" / "a.json",
        tmp_path / "out" / "a.report.json",
        b2c_settings,
        tmp_path / "out" / "c.jsonl",
        tmp_path / "out" / "c.report.json",
    )
    rows = [json.loads(line) for line in (tmp_path / "out" / "c.jsonl").read_text().splitlines()]
    assert rows and all(Path(r["image"]).is_file() for r in rows)


def test_caption_archive_one_folder_deeper_is_read_from_there(tmp_path):
    root = tmp_path / "RSICD"
    write_karpathy(root / "rsicd", "RSICD_images", ["train", "train"])  # same name, case aside
    spec = catalogue_spec("RSICD", root, images=None)
    convert.ret_dataset(spec, tmp_path / "c.jsonl", tmp_path / "c.report.json")
    rows = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert [Path(r["image"]) for r in rows] == [root / "rsicd" / "RSICD_images" / f"airport_{i}.jpg" for i in (0, 1)]


def test_a_deeper_folder_of_another_name_is_only_shown(tmp_path):
    root = tmp_path / "DOTA"
    write_dota(root / "dota_v1", "annotations/version1.0")
    with pytest.raises(DataNotFoundError) as err:
        parse(catalogue_spec("DOTA", root, images=None), tmp_path)
    assert "dota_v1/train/images/  (2 files: P0000.png, P0001.png)" in str(err.value)
    assert "dota_v1/train/annotations/  (0 files)" in str(err.value)  # three levels down, no deeper
    assert "or datasets.DOTA.root to the folder that holds them" in str(err.value)
