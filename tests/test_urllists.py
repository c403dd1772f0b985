"""GAIA's url list (a JSON array of records with `image_src`, `image_alt`, `id` and five
`captions`) fetched by the real img2dataset from a local HTTP server: good images, a 404, a
URL that times out and a non-image; then a rerun, which fetches nothing new."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml
from PIL import Image

import peers
from httpserver import FixtureServer
from remoteclip.download.errors import DownloadError
from remoteclip.download.urllists import UrlListSpec, fetch_url_list, output_folder, write_url_list
from workflow_helpers import snakemake, write_config

# GAIA's fetch (its README) with what a test needs changed: one process, short timeout, no retry
GAIA = {
    "url_lists": ["train_data.json"],
    "url_key": "image_src",
    "caption_key": "image_alt",
    "keep": ["id", "captions"],
    "options": {
        "image_size": 32,
        "encode_format": "png",
        "encode_quality": 9,
        "resize_mode": "keep_ratio",
        "number_sample_per_shard": 4,
        "processes_count": 1,
        "thread_count": 4,
        "retries": 0,
        "timeout": 1,
        "disallowed_header_directives": [],
    },
}


@pytest.fixture(scope="module")
def img2dataset() -> Path:
    folder, why = peers.install("img2dataset", peers.IMG2DATASET)
    if folder is None:
        pytest.skip(why)
    return folder


def jpeg(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def record(i: int, url: str) -> dict:
    """A record with GAIA's fields (README's list), five captions."""
    return {
        "id": f"gaia-{i}",
        "image_src": url,
        "image_alt": f"alt text {i}",
        "captions": [f"The image showcases: scene {i}, caption {c}." for c in range(5)],
        "credits": "NASA Earth Observatory",
        "location": "Athens, Greece",
        "lat": 37.9,
        "lon": 23.7,
        "tag": ["urban"],
        "resolution": "High",
        "satellite": ["Landsat 8"],
        "sensor": ["OLI"],
        "modalities": ["Optical"],
    }


def tar_samples(folder: Path) -> dict[str, dict[str, bytes]]:
    """{key: {suffix: bytes}} of every tar in the folder."""
    samples: dict[str, dict[str, bytes]] = {}
    for path in sorted(folder.glob("*.tar")):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                key, _, suffix = member.name.partition(".")
                samples.setdefault(key, {})[suffix] = tar.extractfile(member).read()
    return samples


def test_a_list_that_yields_no_image_is_an_error_naming_it_and_the_reasons(tmp_path):
    source = tmp_path / "train_data.json"
    source.write_text(json.dumps([{**record(0, ""), "image_src": ""}, {"id": "x"}]))
    with pytest.raises(DownloadError, match=r"train_data.json: no image fetched .* from 0 URL.*no URL in 'image_src'"):
        fetch_url_list(source, tmp_path / "GAIA", UrlListSpec.from_entry("GAIA", GAIA), tmp_path / "not-needed")


def test_pandas_column_layout_and_bad_records_before_any_fetch(tmp_path):
    spec = UrlListSpec.from_entry("GAIA", GAIA)
    columns = {
        "id": {"0": "a", "1": "b", "2": "c"},
        "image_src": {"0": "http://127.0.0.1:9/a.jpg", "1": "", "2": "http://127.0.0.1:9/c.jpg"},
        "image_alt": {"0": None, "1": "x", "2": "y"},
        "captions": {"0": ["one"], "1": ["two"], "2": []},
    }
    source = tmp_path / "val_data.json"
    source.write_text(json.dumps(columns))
    rows, skipped = write_url_list(source, tmp_path / "urls.jsonl", spec)
    assert rows == 1 and skipped == {"no URL in 'image_src'": 1, "no 'captions'": 1}
    written = [json.loads(line) for line in (tmp_path / "urls.jsonl").read_text().splitlines()]
    assert written == [{"image_src": "http://127.0.0.1:9/a.jpg", "image_alt": "", "id": "a", "captions": ["one"]}]
    source.write_text('[{"image_src": "http://x"')  # truncated
    with pytest.raises(DownloadError, match="val_data.json: not a JSON url list"):
        write_url_list(source, tmp_path / "urls.jsonl", spec)


def test_options_that_would_change_what_the_fetch_writes_are_refused():
    with pytest.raises(ValueError, match="may not set incremental_mode, output_folder"):
        UrlListSpec.from_entry("GAIA", {**GAIA, "options": {"output_folder": "x", "incremental_mode": "overwrite"}})


def test_missing_install_is_an_error_saying_how_to_install(tmp_path):
    source = tmp_path / "train_data.json"
    source.write_text(json.dumps([record(0, "http://127.0.0.1:9/a.jpg")]))
    with pytest.raises(DownloadError, match="img2dataset is not installed in .*envs/install-img2dataset.sh"):
        fetch_url_list(source, tmp_path / "GAIA", UrlListSpec.from_entry("GAIA", GAIA), tmp_path / "nothing")


def gaia_entry(listing: str) -> dict:
    """A catalogue entry of GAIA's shape whose url list is served at `listing`."""
    return {
        "title": "GAIA served from 127.0.0.1",
        "group": "RET",  # any group: only the download rules run here
        "format": "caption_table",
        "homepage": "https://github.com/Orion-AI-Lab/GAIA",
        "licence": "not stated",
        "verified": {"files": "unverified"},
        "files": [{"name": "train_data.json", "urls": [listing]}],
        "img2dataset": GAIA,
    }


def test_the_workflow_fetches_the_good_images_with_their_captions_and_counts_each_failure(tmp_path, img2dataset):
    """The catalogue's `img2dataset:` block through download.smk: the list is fetched and
    installed like any file, then rule `fetch_images` (local) runs img2dataset on it before the
    dataset's marker. A rerun of the fetch asks the server for nothing."""
    with FixtureServer() as server:
        good = [server.add(f"img/{i}.jpg", jpeg((40 * i, 90, 60))) for i in range(3)]
        records = [
            record(0, good[0]),
            record(1, server.url("img/missing.jpg")),  # 404
            record(2, good[1]),
            record(3, server.add("img/slow.jpg", jpeg((1, 2, 3)), mode="slow", delay=3)),
            record(4, server.add("img/page.jpg", b"<html>not an image</html>")),
            record(5, good[2]),
            {**record(6, good[0]), "image_src": None},  # the record's own fault: no URL
        ]
        listing = server.add("gaia/train_data.json", json.dumps(records).encode())
        catalogue = tmp_path / "datasets.yaml"
        catalogue.write_text(yaml.safe_dump({"datasets": {"GAIA": gaia_entry(listing)}}))
        config = write_config(
            tmp_path,
            {
                "catalogue": str(catalogue),
                "download": {"lock": str(tmp_path / "lock.yaml"), "img2dataset_packages": str(img2dataset)},
                "datasets": {"GAIA": {"catalogue": "GAIA", "images": None}},
            },
        )
        run = snakemake(tmp_path, config, "data/raw/GAIA/.verified")
        assert "fetch_images" in run.stdout + run.stderr
        assert (tmp_path / "results/logs/download/GAIA/train_data.json.images.log").is_file()

        root = tmp_path / "data" / "raw" / "GAIA"
        samples = tar_samples(output_folder(root, "train_data.json"))
        # every sample is <key>.png + <key>.txt + <key>.json, captions in json field "captions"
        assert {tuple(sorted(s)) for s in samples.values()} == {("json", "png", "txt")}
        meta = sorted((json.loads(s["json"]) for s in samples.values()), key=lambda m: m["id"])
        assert [m["id"] for m in meta] == ["gaia-0", "gaia-2", "gaia-5"]
        assert [m["captions"] for m in meta] == [record(i, "")["captions"] for i in (0, 2, 5)]
        # keep_ratio: the shorter side becomes image_size (img2dataset's resizer)
        assert {Image.open(io.BytesIO(s["png"])).size for s in samples.values()} == {(40 * 32 // 20, 32)}

        summary = json.loads((root / ".extracted" / "train_data.json.images.json").read_text())
        assert summary["rows"] == 6 and summary["successes"] == 3
        assert summary["skipped_records"] == {"no URL in 'image_src'": 1}
        assert (summary["failed_to_download"], summary["failed_to_resize"]) == (2, 1)
        reasons = summary["failures_by_reason"]
        assert sum(reasons.values()) == 3 and len(reasons) == 3
        assert reasons.get("HTTP Error 404: Not Found") == 1
        assert sum(n for r, n in reasons.items() if "timed out" in r) == 1
        assert reasons.get("Image decoding error") == 1
        assert summary["failed_examples"]["HTTP Error 404: Not Found"] == [server.url("img/missing.jpg")]
        assert summary["shards_missing"] == [] and summary["shards"] == 2

        # a rerun: every shard has its stats, so img2dataset asks the server for nothing
        asked = len(server.log)
        again = fetch_url_list(root / "train_data.json", root, UrlListSpec.from_entry("GAIA", GAIA), img2dataset)
        assert len(server.log) == asked
        assert again["successes"] == 3 and tar_samples(output_folder(root, "train_data.json")) == samples
