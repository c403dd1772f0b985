"""Class-folder layouts of the classification benchmarks through folders.scan."""

import pytest

from remoteclip.formats.base import FormatError
from remoteclip.formats.folders import scan

from .fixtures import write_image, write_text


def test_mlrsnet_category_folders_with_label_csvs(tmp_path):
    for category, count in (("airplane", 2), ("bridge", 1)):
        for number in range(1, count + 1):
            write_image(tmp_path / "Images" / category / f"{category}_{number:05d}.jpg", size=(16, 16))
        write_text(tmp_path / "Labels" / f"{category}.csv", ["image,airplane,bridge", f"{category}_00001.jpg,1,0"])
    expected = {
        "airplane": ["airplane/airplane_00001.jpg", "airplane/airplane_00002.jpg"],
        "bridge": ["bridge/bridge_00001.jpg"],
    }
    assert scan(tmp_path / "Images") == expected
    # from the dataset root the category folders are one level deeper; the CSVs are no classes
    assert scan(tmp_path, depth=2) == {k: [f"Images/{f}" for f in v] for k, v in expected.items()}


def test_rsi_cb_two_level_tree(tmp_path):
    for super_class, name in (
        ("transportation", "airport_runway"),
        ("transportation", "avenue"),
        ("water area", "river"),
    ):
        for number in (2, 1, 10):
            write_image(tmp_path / super_class / name / f"{name} ({number}).tif", size=(16, 16))
    classes = scan(tmp_path, depth=2)
    assert sorted(classes) == ["airport_runway", "avenue", "river"]
    # sorted by name, so a split built on top is stable
    assert classes["river"] == [
        "water area/river/river (1).tif",
        "water area/river/river (10).tif",
        "water area/river/river (2).tif",
    ]
    with pytest.raises(FormatError, match="no class folders with images found at depth 1"):
        scan(tmp_path, depth=1)


def test_rsscn7_prefix_letter_folders_keep_their_raw_names(tmp_path):
    for folder in ("aGrass", "bField", "dRiverLake"):
        write_image(tmp_path / "RSSCN7" / folder / f"{folder[0]}001.jpg", size=(16, 16))
    assert scan(tmp_path / "RSSCN7") == {
        "aGrass": ["aGrass/a001.jpg"],
        "bField": ["bField/b001.jpg"],
        "dRiverLake": ["dRiverLake/d001.jpg"],
    }


def test_mixed_extensions_and_stray_files(tmp_path):
    folder = tmp_path / "DenseResidential"
    write_image(folder / "dense_1.jpg", size=(16, 16))
    write_image(folder / "dense_2.tif", size=(16, 16))
    write_image(folder / "dense_3.JPG", size=(16, 16))
    write_text(folder / "Thumbs.db", ["x"])
    write_text(folder / "readme.txt", ["not an image"])
    write_image(tmp_path / ".hidden" / "x.jpg", size=(16, 16))
    (tmp_path / "empty_class").mkdir()
    assert scan(tmp_path) == {
        "DenseResidential": [
            "DenseResidential/dense_1.jpg",
            "DenseResidential/dense_2.tif",
            "DenseResidential/dense_3.JPG",
        ]
    }


def test_missing_root_raises(tmp_path):
    with pytest.raises(FormatError, match="class-folder root does not exist"):
        scan(tmp_path / "AID")
