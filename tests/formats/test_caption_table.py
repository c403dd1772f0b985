"""SkyScript's release layout (comma-separated tables written by pandas with `filepath,title,
title_multi_objects`, images unpacked from images2.zip ... images7.zip below the root) through
caption_table.py."""

from pathlib import Path

import pandas as pd
import pytest

from remoteclip.formats import CAPTION_PARSERS, LOCATORS, PARSER_OPTIONS, caption_table
from remoteclip.formats.base import FormatError, SkipLog

from .fixtures import write_image

TOP50_OPENAI = "SkyScript_train_top50pct_filtered_by_CLIP_openai.csv"  # the default table
TOP50 = "SkyScript_train_top50pct_filtered_by_CLIP_laion_RS.csv"
ROWS = [
    # a caption with the separator and a quote: pandas quotes it, the reader must get it back
    ("images2/a198234555_CH_19.jpg", 'a "roundabout", with grass', "a roundabout next to a parking lot"),
    ("images3/w3355245_NAIP_20.jpg", "an aerial image of a pier", "a pier, a marina and boats"),
    ("images7/n50210_SENT2_21.jpg", "a wind farm", ""),
]


def write_table(path: Path, rows, columns=("filepath", "title", "title_multi_objects"), sep=",") -> Path:
    """A table as the release's pandas writes it (to_csv, no index)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(list(rows), columns=list(columns)).to_csv(path, index=False, sep=sep)
    return path


def make_release(root: Path, rows=ROWS, table: str = TOP50_OPENAI) -> Path:
    write_table(root / table, rows)
    for filepath, *_ in ROWS:
        write_image(root / filepath, size=(16, 16))
    return root


def parse(root: Path, strict: bool = False, **options):
    skips = SkipLog(strict=strict)
    return list(caption_table.parse(root, options, skips)), skips


def test_registered_under_its_contract_name():
    assert CAPTION_PARSERS["caption_table"] is caption_table.parse
    assert PARSER_OPTIONS["caption_table"] == {
        "tables": [TOP50_OPENAI],
        "images": ".",
        "path_column": "filepath",
        "captions": ["title"],
        "separator": ",",
    }
    assert LOCATORS["caption_table"][0] == "tables"


def test_release_table_gives_one_item_per_image_with_the_chosen_columns(tmp_path):
    items, skips = parse(make_release(tmp_path), captions=["title", "title_multi_objects"])
    assert items == [
        {
            "image": "images2/a198234555_CH_19.jpg",
            "captions": ['a "roundabout", with grass', "a roundabout next to a parking lot"],
            "split": "train",
        },
        {
            "image": "images3/w3355245_NAIP_20.jpg",
            "captions": ["an aerial image of a pier", "a pier, a marina and boats"],
            "split": "train",
        },
        # an empty cell is not a caption: pandas writes the empty string as an empty field
        {"image": "images7/n50210_SENT2_21.jpg", "captions": ["a wind farm"], "split": "train"},
    ]
    assert skips.entries == []
    # the default caption column is `title` alone
    assert [i["captions"] for i in parse(tmp_path)[0]] == [[r[1]] for r in ROWS]


def test_an_image_in_two_tables_is_one_image_with_the_captions_of_both(tmp_path):
    make_release(tmp_path)
    write_table(tmp_path / TOP50, [ROWS[1][:1] + ("a second caption of the pier", "x")])
    items, _ = parse(tmp_path, tables=[TOP50_OPENAI, TOP50])
    assert [len(i["captions"]) for i in items] == [1, 2, 1]
    assert items[1]["captions"] == ["an aerial image of a pier", "a second caption of the pier"]


def test_paths_relative_to_an_images_folder_and_tab_separated_tables(tmp_path):
    write_table(tmp_path / "tables" / "pairs.tsv", [("a.jpg", "a field", "-")], sep="\t")
    write_image(tmp_path / "unpacked" / "a.jpg", size=(8, 8))
    items, _ = parse(tmp_path, tables="tables/*.tsv", images="unpacked", separator="\t")
    assert items == [{"image": "unpacked/a.jpg", "captions": ["a field"], "split": "train"}]


def test_paths_outside_the_root_and_missing_images_are_counted_skips(tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-outside.jpg"
    write_image(outside, size=(8, 8))  # exists, so only the check can refuse it
    rows = [
        *ROWS[:1],
        (f"../{outside.name}", "escapes with ..", ""),
        (str(outside), "an absolute path", ""),
        ("images2/../../x.jpg", "escapes in the middle", ""),
        ("images4/not_unpacked.jpg", "its zip was never unpacked", ""),
        ("", "no path", ""),
        ("images3/w3355245_NAIP_20.jpg", "", ""),
    ]
    items, skips = parse(make_release(tmp_path, rows))
    assert [i["image"] for i in items] == ["images2/a198234555_CH_19.jpg"]
    assert [(e["what"], e["line"], e["reason"]) for e in skips.entries] == [
        ("row", 3, f"path '../{outside.name}' points outside the dataset root"),
        ("row", 4, f"path {str(outside)!r} points outside the dataset root"),
        ("row", 5, "path 'images2/../../x.jpg' points outside the dataset root"),
        ("row", 7, "row has an empty filepath"),
        ("row", 8, "row has an empty caption"),
        ("image", 6, "image file 'images4/not_unpacked.jpg' not found"),
    ]
    assert {e["file"] for e in skips.entries} == {str(tmp_path / TOP50_OPENAI)}
    with pytest.raises(FormatError, match=r"top50pct_filtered_by_CLIP_openai.csv:3: path '\.\./"):
        parse(tmp_path, strict=True)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"captions": ["polished_caption"]}, "lacks column(s) 'polished_caption'"),
        ({"path_column": "filename"}, "lacks column(s) 'filename'"),
        ({"separator": "\t"}, "(is it comma-separated? it is read as tab-separated)"),
    ],
)
def test_a_table_without_the_configured_columns_is_an_error_naming_it_and_its_columns(tmp_path, options, message):
    make_release(tmp_path)
    with pytest.raises(FormatError, match=TOP50_OPENAI) as err:
        parse(tmp_path, **options)
    assert message in str(err.value)
    assert "title_multi_objects" in str(err.value)  # the columns it has


def test_truncated_table_is_an_error_with_its_line(tmp_path):
    make_release(tmp_path)
    table = tmp_path / TOP50_OPENAI
    table.write_bytes(table.read_bytes() + b'images2/a.jpg,"an unterminated quote\n')
    with pytest.raises(FormatError, match=r"\.csv:5: malformed comma-separated text \(unexpected end of data\)"):
        parse(tmp_path)


def test_images_must_be_one_folder(tmp_path):
    make_release(tmp_path)
    with pytest.raises(ValueError, match=r"`images` is one folder .* not \['a', 'b'\]"):
        parse(tmp_path, images=["a", "b"])


def test_pattern_matching_no_table_is_an_error(tmp_path):
    make_release(tmp_path)
    with pytest.raises(FormatError, match=r"SkyScript_val_\*\.csv: no caption table matches"):
        parse(tmp_path, tables="SkyScript_val_*.csv")
