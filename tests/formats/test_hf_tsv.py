"""RemoteCLIP's Hugging Face tables (tab-separated `.csv`, BOM, `title`/`filename` header, one
row per caption) through hf_tsv.py, and through the caption stage."""

import json
from pathlib import Path

import pytest

from remoteclip.config import dataset_spec
from remoteclip.convert import ret_dataset
from remoteclip.formats import CAPTION_PARSERS, PARSER_OPTIONS, PARSERS, get_caption_parser, hf_tsv
from remoteclip.formats.base import FormatError, SkipLog

from .fixtures import write_image, write_text

TRAIN_ROWS = [
    "title\tfilename",
    "Many planes are parked next to a long building in an airport .\trsicd_airport_1.png",
    "Some planes are parked near the terminal .\trsicd_airport_1.png",
    "A playground is surrounded by trees .\trsitmd_playground_12.png",
    "A piece of farmland .\tucm_1.png",
    "Many crops in the field .\tucm_1.png",
    "Several planes sit at the gates .\trsicd_airport_1.png",
]
TEST_ROWS = ["title\tfilename"] + [f"A beach by the sea {i} .\tucm_2000.png" for i in range(5)]


def make_release(root: Path, train_rows=TRAIN_ROWS, bom: bool = True) -> Path:
    """The release's layout: csv_file/{train,test}/*.csv and images unzipped below data/."""
    write_text(root / "csv_file" / "train" / "Ret-3_train.csv", train_rows, newline="\r\n", bom=bom)
    write_text(root / "csv_file" / "test" / "ucm_test.csv", TEST_ROWS, bom=bom)
    for name in ("rsicd_airport_1.png", "rsitmd_playground_12.png", "ucm_1.png"):
        write_image(root / "data" / "Ret-3_train" / name, size=(16, 16))
    write_image(root / "data" / "Ret-3_test" / "ucm_2000.png", size=(16, 16))
    return root


def parse(root: Path, strict: bool = False, **options):
    skips = SkipLog(strict=strict)
    return list(hf_tsv.parse(root, {"images": ["data"], **options}, skips)), skips


def test_rows_grouped_per_image_in_caption_order(tmp_path):
    items, skips = parse(make_release(tmp_path))
    assert items == [
        {
            "image": "data/Ret-3_train/rsicd_airport_1.png",
            "split": "train",
            "captions": [
                "Many planes are parked next to a long building in an airport .",
                "Some planes are parked near the terminal .",
                "Several planes sit at the gates .",
            ],
        },
        {
            "image": "data/Ret-3_train/rsitmd_playground_12.png",
            "split": "train",
            "captions": ["A playground is surrounded by trees ."],
        },
        {
            "image": "data/Ret-3_train/ucm_1.png",
            "split": "train",
            "captions": ["A piece of farmland .", "Many crops in the field ."],
        },
    ]
    assert skips.entries == []


def test_bom_is_not_part_of_the_header(tmp_path):
    with_bom, _ = parse(make_release(tmp_path / "a", bom=True))
    without, _ = parse(make_release(tmp_path / "b", bom=False))
    assert with_bom == without and len(with_bom) == 3


def test_split_placeholder_selects_the_test_tables(tmp_path):
    items, _ = parse(make_release(tmp_path), splits=["test"])
    assert items == [
        {
            "image": "data/Ret-3_test/ucm_2000.png",
            "split": "test",
            "captions": [f"A beach by the sea {i} ." for i in range(5)],
        }
    ]
    both, _ = parse(tmp_path, splits=["train", "test"])
    assert [i["split"] for i in both] == ["train", "train", "train", "test"]


def test_table_without_split_placeholder_is_train(tmp_path):
    make_release(tmp_path)
    items, _ = parse(tmp_path, tables=["csv_file/train/Ret-3_train.csv"], splits=["train"])
    assert len(items) == 3
    assert parse(tmp_path, tables=["csv_file/train/Ret-3_train.csv"], splits=["test"])[0] == []


def test_column_order_and_extra_columns_do_not_matter(tmp_path):
    rows = ["filename\tsource\ttitle", "ucm_1.png\tucm\tA farm .", "ucm_1.png\tucm\tCrops ."]
    items, _ = parse(make_release(tmp_path, rows))
    assert items == [{"image": "data/Ret-3_train/ucm_1.png", "split": "train", "captions": ["A farm .", "Crops ."]}]


def test_quoted_caption_with_a_tab_comes_back_intact(tmp_path):
    # what pandas' to_csv(sep="\t") writes for a field holding the separator or a quote
    rows = ["title\tfilename", '"A ""big"" plane\tat the gate ."\trsicd_airport_1.png']
    items, _ = parse(make_release(tmp_path, rows))
    assert items[0]["captions"] == ['A "big" plane\tat the gate .']


def test_image_found_by_relative_path_or_by_name_anywhere_below(tmp_path):
    rows = ["title\tfilename", "A farm .\tRet-3_train/ucm_1.png", "A plane .\trsicd_airport_1.png"]
    items, _ = parse(make_release(tmp_path, rows))
    assert [i["image"] for i in items] == ["data/Ret-3_train/ucm_1.png", "data/Ret-3_train/rsicd_airport_1.png"]


def test_bad_rows_and_missing_images_are_counted_skips(tmp_path):
    rows = [
        "title\tfilename",
        "A farm .\tucm_1.png",
        "three\tfields\there",  # wrong field count
        "\tucm_1.png",  # empty caption
        "A lonely caption .\t",  # empty filename
        "",  # blank line: ignored
        "A missing image .\tucm_9999.png",
    ]
    items, skips = parse(make_release(tmp_path, rows))
    assert [i["image"] for i in items] == ["data/Ret-3_train/ucm_1.png"]
    table = str(tmp_path / "csv_file" / "train" / "Ret-3_train.csv")
    assert [(e["what"], e["line"], e["reason"]) for e in skips.entries] == [
        ("row", 3, "row has 3 fields, the header 2"),
        ("row", 4, "row has an empty caption"),
        ("row", 5, "row has an empty filename"),
        ("image", 7, "image file 'ucm_9999.png' not found"),
    ]
    assert all(e["file"] == table for e in skips.entries)
    with pytest.raises(FormatError, match=r"Ret-3_train.csv:3: row has 3 fields"):
        parse(tmp_path, strict=True)


@pytest.mark.parametrize(
    "rows, message",
    [
        (["title,filename", "A farm .,ucm_1.png"], "lacks column(s) 'title', 'filename' (is it comma-separated?"),
        (["caption\tfilename", "A farm .\tucm_1.png"], "lacks column(s) 'title'"),
        ([], "empty caption table"),
    ],
)
def test_wrong_header_is_an_error_naming_the_table(tmp_path, rows, message):
    make_release(tmp_path, rows)
    with pytest.raises(FormatError, match="Ret-3_train.csv") as err:
        parse(tmp_path)
    assert message in str(err.value)


def test_pattern_matching_no_table_is_an_error(tmp_path):
    make_release(tmp_path)
    with pytest.raises(FormatError, match=r"csv_file/val/\*\.csv: no caption table matches"):
        parse(tmp_path, splits=["val"])


def test_not_utf8_is_an_error(tmp_path):
    make_release(tmp_path)
    (tmp_path / "csv_file" / "train" / "Ret-3_train.csv").write_bytes(b"title\tfilename\n\xff\xfe\tucm_1.png\n")
    with pytest.raises(FormatError, match="not UTF-8"):
        parse(tmp_path)


def test_registered_as_a_caption_format():
    assert get_caption_parser("hf_tsv") is hf_tsv.parse and CAPTION_PARSERS["karpathy"]
    assert "hf_tsv" in PARSER_OPTIONS and "hf_tsv" not in PARSERS  # not a box format
    with pytest.raises(KeyError, match="unknown caption format 'dota'"):
        get_caption_parser("dota")


def test_caption_stage_reads_hf_tables(tmp_path):
    root = make_release(tmp_path / "raw")
    spec = dataset_spec("hf", {"group": "RET", "format": "hf_tsv", "root": str(root), "options": {"images": ["data"]}})
    report = ret_dataset(spec, tmp_path / "hf.jsonl", tmp_path / "hf.report.json")
    rows = [json.loads(line) for line in (tmp_path / "hf.jsonl").read_text().splitlines()]
    assert [len(r["captions"]) for r in rows] == [3, 1, 2]
    assert all(r["source"] == "hf" and Path(r["image"]).is_file() for r in rows)
    assert report["captioned"] == 3 and report["skipped_total"] == 0
