"""The `webdataset` caption format on RS5M's and RSTeller's tar layouts, read in place."""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile

import pytest
from PIL import Image

from remoteclip.config import dataset_spec
from remoteclip.convert import ret_dataset
from remoteclip.errors import DataNotFoundError
from remoteclip.formats import FormatError, SkipLog, webdataset
from remoteclip.imageio import load_sample_rgb

from .web_fixtures import noise_image, rsteller_json, write_rs5m, write_rsteller, write_tar

RS5M = {"image_extensions": ["img_content"], "captions": ["caption"]}


def parse(root, options=None, skips=None):
    return list(webdataset.parse(root, options or {}, skips if skips is not None else SkipLog()))


def test_rs5m_tars_give_one_row_per_image_with_the_bytes_where_stored_says(tmp_path):
    images = write_rs5m(tmp_path)
    rows = parse(tmp_path, RS5M)
    assert [r["image"] for r in rows] == list(images)  # tar by tar in sorted order, members in tar order
    assert rows[0]["captions"] == ["a pub11 scene number 0"] and {r["split"] for r in rows} == {"train"}
    for row in rows:
        stored = row["stored"]
        with open(tmp_path / stored["tar"], "rb") as fh:
            fh.seek(stored["offset"])
            assert fh.read(stored["size"]) == images[row["image"]]


def test_rsteller_captions_from_the_txt_lines_and_the_json_annotations(tmp_path):
    captions = write_rsteller(tmp_path)
    by_txt = {r["image"]: r["captions"] for r in parse(tmp_path, {"captions": ["txt"]})}
    by_json = {r["image"]: r["captions"] for r in parse(tmp_path, {"captions": ["json:annotations.text"]})}
    assert by_txt == by_json == captions
    both = parse(tmp_path, {"captions": ["json:annotations.text", "txt"]})
    assert {r["image"]: r["captions"] for r in both} == captions  # the same caption twice is kept once


def test_a_stored_image_decodes_as_the_member_does(tmp_path):
    images = write_rs5m(tmp_path)
    row = parse(tmp_path, RS5M)[4]
    stored = {**row["stored"], "tar": str(tmp_path / row["stored"]["tar"])}
    expected = Image.open(io.BytesIO(images[row["image"]])).convert("RGB")
    assert load_sample_rgb(str(tmp_path / row["image"]), stored).tobytes() == expected.tobytes()


def test_samples_without_an_image_or_a_caption_are_counted_skips(tmp_path):
    write_tar(
        tmp_path / "Patches0000.tar",
        [
            ("1.jpg", noise_image(1)),
            ("1.json", rsteller_json(1, ["a field"])),
            ("2.jpg", noise_image(2)),  # no caption member at all
            ("3.json", rsteller_json(3, ["no image here"])),
            ("4.jpg", noise_image(4)),
            ("4.json", b"{not json"),
            ("5.jpg", noise_image(5)),
            ("5.json", json.dumps({"annotations": []}).encode()),  # a json without the field's values
            ("1.txt", b"a field"),  # key 1 again, after other keys
        ],
    )
    skips = SkipLog()
    rows = parse(tmp_path, {"captions": ["json:annotations.text"]}, skips)
    assert [r["image"] for r in rows] == ["Patches0000.tar/1.jpg"]
    reasons = [e["reason"] for e in skips.entries]
    assert len(reasons) == 5, reasons
    assert "2.jpg has no caption (json:annotations.text)" in reasons[0]
    assert "sample 3 has no image member" in reasons[1]
    assert "4.json is not JSON" in reasons[2]
    assert "5.jpg has no caption" in reasons[3]
    assert "key 1 appears again" in reasons[4]
    with pytest.raises(FormatError, match="no caption"):
        parse(tmp_path, {"captions": ["json:annotations.text"]}, SkipLog(strict=True))


@pytest.mark.parametrize("cut", ["inside a member", "at a member boundary", "a corrupt header"])
def test_a_truncated_or_corrupt_tar_is_an_error_naming_it(tmp_path, cut):
    write_rs5m(tmp_path)
    tar = tmp_path / "rs3-train-0000.tar"
    data = tar.read_bytes()
    with tarfile.open(tar) as archive:
        last = archive.getmembers()[-1]
    if cut == "a corrupt header":  # the last member's header, overwritten
        header = last.offset_data - 512
        tar.write_bytes(data[:header] + b"x" * 512 + data[header + 512 :])
    else:
        tar.write_bytes(data[: last.offset_data - 100 if cut == "inside a member" else last.offset_data + 512])
    with pytest.raises(FormatError, match="truncated") as err:
        parse(tmp_path, RS5M)
    assert str(tar) in str(err.value)


def test_a_compressed_or_broken_tar_is_an_error_naming_it(tmp_path):
    write_rs5m(tmp_path)
    tar = tmp_path / "pub11-train-0000.tar"
    tar.write_bytes(gzip.compress(tar.read_bytes()))
    with pytest.raises(FormatError, match="gzip-compressed") as err:
        parse(tmp_path, RS5M)
    assert str(tar) in str(err.value)
    tar.write_bytes(b"this is no tar at all" * 40)
    with pytest.raises(FormatError, match="not a readable tar"):
        parse(tmp_path, RS5M)


def test_the_caption_stage_writes_web_rows_under_the_root_and_names_the_patterns_that_found_nothing(tmp_path):
    root = tmp_path / "RS5M"
    write_rs5m(root)
    (root / ".verified").write_text("{}")
    spec = dataset_spec("rs5m", {"group": "WEB", "format": "webdataset", "root": str(root), "options": RS5M})
    report = ret_dataset(spec, tmp_path / "rs5m.jsonl", tmp_path / "rs5m.report.json")
    rows = [json.loads(line) for line in (tmp_path / "rs5m.jsonl").read_text().splitlines()]
    assert report["captioned"] == len(rows) == 6 and report["group"] == "WEB"
    assert rows[0]["image"] == f"{root}/pub11-train-0000.tar/pub11_00000.img_content"
    assert rows[0]["stored"] == {
        "tar": f"{root}/pub11-train-0000.tar",
        "offset": 512,
        "size": rows[0]["stored"]["size"],
    }
    assert rows[0]["source"] == "rs5m" and load_sample_rgb(rows[0]["image"], rows[0]["stored"]).size == (40, 40)

    spec.options = {**RS5M, "tars": ["shards/*.tar"]}
    with pytest.raises(DataNotFoundError) as err:
        ret_dataset(spec, tmp_path / "none.jsonl", tmp_path / "none.report.json")
    assert f"{root}/shards/*.tar" in str(err.value) and "pub11-train-0000.tar" in str(err.value)


def test_a_web_corpus_is_a_training_source_the_caption_stage_reads_and_nothing_else(tmp_path):
    """Dry run of the whole workflow with a WEB source: its captions, hashes and shard plan are
    scheduled; no parse, B2C or evaluation job names it."""
    from workflow_helpers import REPO, snakemake, write_config

    write_rs5m(tmp_path / "rs5m")
    config = {
        "seed": 1,
        "datasets": {
            "web": {"group": "WEB", "format": "webdataset", "root": str(tmp_path / "rs5m"), "options": RS5M},
            "t_rsicd": {"group": "RET", "format": "karpathy", "synthetic": {"writer": "karpathy", "images": 20}},
        },
        "runs": {"r": {"sources": ["@WEB"]}},
        "b2c": {"templates": str(REPO / "config" / "b2c_templates.yaml")},
    }
    proc = snakemake(tmp_path, write_config(tmp_path, config), "-n")
    blocks = re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):\n((?:    .*\n)*)", proc.stdout + proc.stderr, re.M)
    jobs = {rule for rule, block in blocks if re.search(r"(dataset|benchmark)=web\b", block)}
    assert jobs == {"local_dataset", "ret_captions", "hash_training_source", "plan_shards"}, proc.stdout


def test_a_web_corpus_needs_a_caption_format_and_is_no_benchmark():
    from remoteclip.config import ConfigError, validate

    web = {"group": "WEB", "format": "webdataset", "root": "x", "options": RS5M}
    with pytest.raises(ConfigError, match="group WEB needs a caption format"):
        validate({"datasets": {"web": {**web, "format": "dota", "options": {}}}})
    with pytest.raises(ConfigError, match="is a WEB source, not a benchmark"):
        validate({"datasets": {"web": web}, "evaluation": {"benchmarks": ["web"]}})
    with pytest.raises(ConfigError, match="has no evaluation test split"):
        validate({"datasets": {"web": web}, "dedup": {"against": ["web"]}})
    assert (
        validate({"datasets": {"web": web}, "runs": {"r": {"sources": ["@WEB"]}}})["datasets"]["web"]["group"] == "WEB"
    )


@pytest.mark.parametrize(
    "name", ["607.jpg", "a/b/c.seg.png", "dir.v2/key.json", "no_dot", "x/.hidden", "k.", "./1.txt"]
)
def test_member_names_split_into_key_and_suffix_as_webdataset_splits_them(name):
    from webdataset.tariterators import base_plus_ext

    assert webdataset.base_plus_ext(name) == base_plus_ext(name)
