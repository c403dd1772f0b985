"""The download engine against a real HTTP server on 127.0.0.1 (tests/httpserver.py):
resume, retries, checksums, trust on first use, manual datasets, and the hf:// and
gdrive:// schemes failing clearly without a network."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from archives import make_rar
from httpserver import FixtureServer
from remoteclip.download import (
    ChecksumError,
    ChecksumLock,
    DownloadError,
    ManualDownloadRequired,
    fetch_dataset,
    fetch_file,
    install_archives,
    parse_gdrive_url,
    parse_hf_url,
)
from remoteclip.extract import CorruptArchiveError, ExtractError, UnsafeArchiveError

os.environ["HF_HUB_OFFLINE"] = "1"

FAST = {"backoff": 0.01, "timeout": 5, "progress": False}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in sorted(files.items()):
            zf.writestr(name, data)
    return buf.getvalue()


def make_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# Random payloads make the archive a few hundred KB, so a cut lands mid-file.
FILES = {f"images/{i:02d}.jpg": os.urandom(20_000) for i in range(15)} | {"labels.json": b"{}"}
ARCHIVE = make_zip(FILES)


@pytest.fixture
def server():
    with FixtureServer() as srv:
        yield srv


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def entry_for(url: str | list[str], **checksums) -> dict:
    urls = url if isinstance(url, list) else [url]
    return {"files": [{"name": "data.zip", "urls": urls, **checksums}]}


def extracted(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not {".archives", ".extracted"} & set(p.parts) and p.name != ".verified"
    }


# ---- fetch_file -----------------------------------------------------------------------------


def test_fetch_file_downloads_and_verifies(server, tmp_path):
    url = server.add("data.zip", ARCHIVE)
    dest = fetch_file(url, tmp_path / "data.zip", md5=md5(ARCHIVE), sha256=sha256(ARCHIVE), **FAST)
    assert dest.read_bytes() == ARCHIVE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.zip"]


def test_transfer_cut_mid_file_resumes_with_a_range_request(server, tmp_path):
    cut = len(ARCHIVE) // 3
    url = server.add("data.zip", ARCHIVE, mode="cut", cut_at=cut)
    dest = fetch_file(url, tmp_path / "data.zip", md5=md5(ARCHIVE), **FAST)
    assert dest.read_bytes() == ARCHIVE
    first, second = server.requests_for("data.zip")
    assert (first.range, first.status) == (None, 200)
    assert (second.range, second.status) == (f"bytes={cut}-", 206)


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    url = server.add("data.zip", ARCHIVE)
    (tmp_path / "data.zip.part").write_bytes(ARCHIVE[:1000])
    fetch_file(url, tmp_path / "data.zip", md5=md5(ARCHIVE), **FAST)
    assert (tmp_path / "data.zip").read_bytes() == ARCHIVE
    assert [r.range for r in server.requests_for("data.zip")] == ["bytes=1000-"]


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    url = server.add("data.zip", ARCHIVE, mode="ignore_range")
    (tmp_path / "data.zip.part").write_bytes(b"stale bytes of another version")
    fetch_file(url, tmp_path / "data.zip", md5=md5(ARCHIVE), **FAST)
    assert (tmp_path / "data.zip").read_bytes() == ARCHIVE


def test_stale_partial_file_is_redownloaded_when_the_checksum_fails(server, tmp_path):
    url = server.add("data.zip", ARCHIVE)
    (tmp_path / "data.zip.part").write_bytes(b"x" * 1000)  # right length, wrong bytes
    fetch_file(url, tmp_path / "data.zip", md5=md5(ARCHIVE), **FAST)
    assert (tmp_path / "data.zip").read_bytes() == ARCHIVE
    assert [r.range for r in server.requests_for("data.zip")] == ["bytes=1000-", None]


def test_wrong_checksum_keeps_the_bytes_aside_and_names_everything(server, tmp_path):
    url = server.add("data.zip", ARCHIVE, mode="wrong", wrong=b"corrupt mirror" * 100)
    with pytest.raises(ChecksumError) as err:
        fetch_file(url, tmp_path / "data.zip", md5=md5(ARCHIVE), **FAST)
    message = str(err.value)
    assert url in message and md5(ARCHIVE) in message and md5(b"corrupt mirror" * 100) in message
    assert err.value.kept == tmp_path / "data.zip.bad"
    assert (tmp_path / "data.zip.bad").read_bytes() == b"corrupt mirror" * 100
    assert not (tmp_path / "data.zip").exists() and not (tmp_path / "data.zip.part").exists()


def test_server_errors_are_retried(server, tmp_path):
    url = server.add("data.zip", ARCHIVE, mode="fail", failures=2, status=503)
    fetch_file(url, tmp_path / "data.zip", md5=md5(ARCHIVE), **FAST)
    assert [r.status for r in server.requests_for("data.zip")] == [503, 503, 200]


def test_persistent_server_errors_give_up_after_the_retries(server, tmp_path):
    url = server.add("data.zip", ARCHIVE, mode="fail", failures=100, status=500)
    with pytest.raises(DownloadError, match=r"giving up after 2 retries: HTTP 500") as err:
        fetch_file(url, tmp_path / "data.zip", retries=2, **FAST)
    assert url in str(err.value)
    assert len(server.requests_for("data.zip")) == 3


def test_not_found_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404") as err:
        fetch_file(server.url("missing.zip"), tmp_path / "missing.zip", **FAST)
    assert server.url("missing.zip") in str(err.value)
    assert len(server.requests_for("missing.zip")) == 1


@pytest.mark.parametrize(
    "value, wait", [("7", 7.0), (" 3 ", 3.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("soon", None), (None, None)]
)
def test_retry_after_is_read_in_seconds_or_as_an_http_date(value, wait):
    import requests

    from remoteclip.download.http import _retry_after

    response = requests.Response()
    if value is not None:
        response.headers["Retry-After"] = value
    assert _retry_after(response) == wait


def test_refused_connection_is_retried_then_reported(tmp_path):
    url = f"http://127.0.0.1:{unused_port()}/data.zip"
    with pytest.raises(DownloadError, match="giving up after 1 retries: connection failed"):
        fetch_file(url, tmp_path / "data.zip", retries=1, **FAST)


def test_existing_verified_file_is_not_downloaded_again(server, tmp_path):
    url = server.add("data.zip", ARCHIVE)
    (tmp_path / "data.zip").write_bytes(ARCHIVE)
    fetch_file(url, tmp_path / "data.zip", md5=md5(ARCHIVE), **FAST)
    assert server.requests_for("data.zip") == []


# ---- other schemes --------------------------------------------------------------------------


def test_hf_urls_are_parsed():
    ref = parse_hf_url("hf://datasets/torchgeo/dior/Images/train.zip@4f2e1c0")
    assert (ref.repo_type, ref.repo_id, ref.filename, ref.revision) == (
        "dataset",
        "torchgeo/dior",
        "Images/train.zip",
        "4f2e1c0",
    )
    ref = parse_hf_url("hf://models/chendelong/RemoteCLIP@main/RemoteCLIP-ViT-B-32.pt")
    assert (ref.repo_type, ref.repo_id, ref.filename, ref.revision) == (
        "model",
        "chendelong/RemoteCLIP",
        "RemoteCLIP-ViT-B-32.pt",
        "main",
    )
    assert parse_hf_url("hf://datasets/a/b/c.zip").revision is None
    with pytest.raises(DownloadError, match="malformed hf:// URL"):
        parse_hf_url("hf://datasets/only-owner")


def test_hf_offline_without_cache_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    url = "hf://datasets/remoteclip-tests/not-cached/archive.zip"
    with pytest.raises(DownloadError) as err:
        fetch_file(url, tmp_path / "archive.zip", **FAST)
    message = str(err.value)
    assert url in message and "HF_HUB_OFFLINE" in message
    assert "remoteclip-tests/not-cached" in message and str(tmp_path / "archive.zip") in message


def test_gdrive_urls_are_parsed():
    assert parse_gdrive_url("gdrive://1AbCdEfGhIjKlMnOp_-qRsT") == "1AbCdEfGhIjKlMnOp_-qRsT"
    with pytest.raises(DownloadError, match="malformed gdrive:// URL"):
        parse_gdrive_url("gdrive://not an id")


def test_gdrive_unreachable_fails_clearly(tmp_path, monkeypatch):
    # Every request goes to a closed local port posing as the proxy: Google is never contacted.
    proxy = f"http://127.0.0.1:{unused_port()}"
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, proxy)
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    file_id = "1AbCdEfGhIjKlMnOpQrStUvWxYz"
    with pytest.raises(DownloadError) as err:
        fetch_file(f"gdrive://{file_id}", tmp_path / "data.zip", retries=0, **FAST)
    message = str(err.value)
    assert "Google Drive" in message and file_id in message and str(tmp_path / "data.zip") in message
    assert not (tmp_path / "data.zip").exists()


def test_unknown_scheme_is_refused(tmp_path):
    with pytest.raises(DownloadError, match="unsupported URL scheme 'ftp'"):
        fetch_file("ftp://example.org/data.zip", tmp_path / "data.zip", **FAST)


# ---- fetch_dataset ----------------------------------------------------------------------------


def test_dataset_is_fetched_extracted_and_marked(server, tmp_path):
    url = server.add("data.zip", ARCHIVE)
    root, lock = tmp_path / "raw" / "demo", tmp_path / "datasets.lock.yaml"
    assert fetch_dataset("demo", entry_for(url, md5=md5(ARCHIVE)), root, lock, **FAST) == root
    assert extracted(root) == FILES
    assert (root / ".archives" / "data.zip").read_bytes() == ARCHIVE
    marker = json.loads((root / ".verified").read_text())
    assert marker["dataset"] == "demo"
    assert marker["files"] == [
        {
            "name": "data.zip",
            "size": len(ARCHIVE),
            "md5": md5(ARCHIVE),
            "sha256": sha256(ARCHIVE),
            "verified_by": "md5",
            "subdir": None,
            "extract": True,
            "nested": [],
        }
    ]
    assert not lock.exists()  # a published checksum needs no lock entry


def test_current_marker_makes_a_rerun_a_no_op_and_archives_are_reused(server, tmp_path):
    url = server.add("data.zip", ARCHIVE)
    root, lock = tmp_path / "demo", tmp_path / "lock.yaml"
    entry = entry_for(url, md5=md5(ARCHIVE))
    fetch_dataset("demo", entry, root, lock, **FAST)
    fetch_dataset("demo", entry, root, lock, **FAST)
    first = (root / "images" / "00.jpg").stat().st_mtime_ns
    (root / ".verified").unlink()  # the archive's own markers still say it is verified and extracted
    fetch_dataset("demo", entry, root, lock, **FAST)
    assert (root / ".verified").is_file() and (root / "images" / "00.jpg").stat().st_mtime_ns == first
    shutil.rmtree(root / ".extracted")  # now it is extracted again, from the archive already there
    (root / ".verified").unlink()
    (root / "labels.json").unlink()
    fetch_dataset("demo", entry, root, lock, **FAST)
    assert extracted(root) == FILES
    assert len(server.requests_for("data.zip")) == 1


def test_mirrors_are_tried_in_order_and_subdir_and_plain_files_work(server, tmp_path):
    mirror = server.add("mirror/data.zip", ARCHIVE)
    split = server.add("train.txt", b"images/00.jpg\n")
    entry = {
        "files": [
            {"name": "data.zip", "urls": [server.url("gone.zip"), mirror], "sha256": sha256(ARCHIVE), "subdir": "v1"},
            {"name": "train.txt", "urls": [split], "md5": md5(b"images/00.jpg\n")},
        ]
    }
    root = tmp_path / "demo"
    fetch_dataset("demo", entry, root, tmp_path / "lock.yaml", **FAST)
    assert extracted(root) == {**{f"v1/{k}": v for k, v in FILES.items()}, "train.txt": b"images/00.jpg\n"}
    assert [r.status for r in server.log] == [404, 200, 200]


def test_dataset_with_wrong_checksum_has_no_marker(server, tmp_path):
    url = server.add("data.zip", ARCHIVE, mode="wrong", wrong=ARCHIVE[:-1] + b"!")
    root = tmp_path / "demo"
    with pytest.raises(ChecksumError) as err:
        fetch_dataset("demo", entry_for(url, md5=md5(ARCHIVE)), root, tmp_path / "lock.yaml", **FAST)
    assert url in str(err.value) and md5(ARCHIVE) in str(err.value)
    assert (root / ".archives" / "data.zip.bad").exists()
    assert not (root / ".verified").exists() and not (root / ".archives" / "data.zip").exists()
    assert extracted(root) == {}


def test_truncated_archive_with_matching_checksum_fails_extraction_without_marker(server, tmp_path):
    cut = ARCHIVE[: len(ARCHIVE) // 2]
    url = server.add("data.zip", cut)
    root = tmp_path / "demo"
    with pytest.raises(CorruptArchiveError, match="data.zip"):
        fetch_dataset("demo", entry_for(url, md5=md5(cut)), root, tmp_path / "lock.yaml", **FAST)
    assert not (root / ".verified").exists()
    assert extracted(root) == {}


def test_trust_on_first_use_records_then_verifies(server, tmp_path):
    url = server.add("data.zip", ARCHIVE)
    lock = tmp_path / "config" / "datasets.lock.yaml"
    fetch_dataset("demo", entry_for(url), tmp_path / "first", lock, **FAST)
    recorded = yaml.safe_load(lock.read_text())["datasets"]["demo"]["data.zip"]
    assert recorded == {"sha256": sha256(ARCHIVE), "size": len(ARCHIVE), "source": url}
    assert lock.read_text().startswith("# Trust-on-first-use")
    marker = json.loads((tmp_path / "first" / ".verified").read_text())
    assert marker["files"][0]["verified_by"] == "recorded on first use"

    fetch_dataset("demo", entry_for(url), tmp_path / "second", lock, **FAST)
    assert json.loads((tmp_path / "second" / ".verified").read_text())["files"][0]["verified_by"] == "lock"

    server.add("data.zip", ARCHIVE, mode="wrong", wrong=b"upstream changed" * 50)
    with pytest.raises(ChecksumError) as err:
        fetch_dataset("demo", entry_for(url), tmp_path / "third", lock, **FAST)
    assert str(lock) in str(err.value) and sha256(ARCHIVE) in str(err.value)
    assert not (tmp_path / "third" / ".verified").exists()


def test_checksum_lock_refuses_to_overwrite_a_different_digest(tmp_path):
    lock = ChecksumLock(tmp_path / "lock.yaml")
    lock.record("demo", "a.zip", "a" * 64, 10, "http://example.org/a.zip")
    lock.record("demo", "a.zip", "a" * 64, 10, "http://example.org/a.zip")
    assert lock.get("demo", "a.zip")["sha256"] == "a" * 64
    with pytest.raises(ChecksumError, match="already recorded"):
        lock.record("demo", "a.zip", "b" * 64, 10, "http://mirror.org/a.zip")


MANUAL = {
    "files": [{"name": "potsdam.zip", "md5": md5(ARCHIVE)}],
    "manual": {
        "instructions": "Fill in the ISPRS request form; the download link arrives by e-mail.",
        "files": [{"name": "potsdam.zip", "from": "https://www.isprs.org/data/potsdam"}],
    },
}


def test_manual_dataset_names_file_source_and_exact_path_then_uses_the_placed_file(tmp_path):
    root = tmp_path / "raw" / "potsdam"
    with pytest.raises(ManualDownloadRequired) as err:
        fetch_dataset("potsdam", MANUAL, root, tmp_path / "lock.yaml", **FAST)
    message, target = str(err.value), root / ".archives" / "potsdam.zip"
    assert "potsdam.zip" in message and "https://www.isprs.org/data/potsdam" in message
    assert "ISPRS request form" in message and str(target) in message and md5(ARCHIVE) in message
    assert err.value.files == [
        {"name": "potsdam.zip", "from": "https://www.isprs.org/data/potsdam", "path": str(target)}
    ]
    assert not (root / ".verified").exists()

    target.write_bytes(ARCHIVE)
    fetch_dataset("potsdam", MANUAL, root, tmp_path / "lock.yaml", **FAST)
    assert extracted(root) == FILES and (root / ".verified").exists()


def test_manually_placed_wrong_file_is_reported_and_left_in_place(tmp_path):
    target = tmp_path / "potsdam" / ".archives" / "potsdam.zip"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"an HTML login page")
    with pytest.raises(ChecksumError, match="replace it with the right file") as err:
        fetch_dataset("potsdam", MANUAL, tmp_path / "potsdam", tmp_path / "lock.yaml", **FAST)
    assert str(target) in str(err.value) and md5(ARCHIVE) in str(err.value)
    assert target.exists()


def test_failed_downloads_of_a_file_with_manual_steps_ask_for_the_manual_download(server, tmp_path):
    entry = {
        "files": [{"name": "data.zip", "urls": [server.url("quota-exceeded.zip")]}],
        "manual": {
            "instructions": "Use a browser.",
            "files": [{"name": "data.zip", "from": "https://drive.google.com/..."}],
        },
    }
    root = tmp_path / "demo"
    with pytest.raises(ManualDownloadRequired) as err:
        fetch_dataset("demo", entry, root, tmp_path / "lock.yaml", **FAST)
    assert "HTTP 404" in str(err.value) and str(root / ".archives" / "data.zip") in str(err.value)
    # No published checksum: the placed file is trusted on first use and recorded.
    (root / ".archives" / "data.zip").write_bytes(ARCHIVE)
    fetch_dataset("demo", entry, root, tmp_path / "lock.yaml", **FAST)
    assert ChecksumLock(tmp_path / "lock.yaml").get("demo", "data.zip")["sha256"] == sha256(ARCHIVE)


@pytest.mark.parametrize(
    "bad",
    [
        {"files": [{"name": "../escape.zip", "urls": ["http://127.0.0.1/x"]}]},
        {"files": [{"name": "a.zip", "urls": ["http://127.0.0.1/x"], "subdir": "../up"}]},
        {"files": []},
        {"files": [{"name": "a.zip", "urls": ["http://127.0.0.1/x"], "nested": ["../up/*.rar"]}]},
        {"files": [{"name": "a.txt", "urls": ["http://127.0.0.1/x"], "nested": ["x.zip"]}]},
    ],
)
def test_bad_catalogue_entries_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="dataset 'demo'"):
        fetch_dataset("demo", bad, tmp_path / "demo", tmp_path / "lock.yaml", **FAST)


# ---- numbered files: a corpus of hundreds of shards is one catalogue line ----


def test_a_numbered_file_fetches_each_shard_kept_as_a_tar_under_its_own_name(server, tmp_path):
    shards = {f"train-{n:04d}.tar": make_tar({f"{n}.jpg": b"img", f"{n}.json": b"{}"}) for n in (8, 9, 10)}
    for name, data in shards.items():
        server.add(f"JPG/{name}", data)
    entry = {
        "files": [
            {
                "name": "train-{0008..0010}.tar",
                "urls": [server.url("gone/train-{0008..0010}.tar"), server.url("JPG/train-{0008..0010}.tar")],
                "extract": False,
                "subdir": "JPG",
            }
        ]
    }
    root, lock = tmp_path / "demo", tmp_path / "lock.yaml"
    fetch_dataset("demo", entry, root, lock, **FAST)
    assert {p.name: p.read_bytes() for p in (root / "JPG").iterdir()} == shards  # tars read in place, not unpacked
    recorded = yaml.safe_load(lock.read_text())["datasets"]["demo"]
    assert {name: r["sha256"] for name, r in recorded.items()} == {n: sha256(d) for n, d in shards.items()}
    marker = json.loads((root / ".verified").read_text())
    assert [f["name"] for f in marker["files"]] == ["train-0008.tar", "train-0009.tar", "train-0010.tar"]


@pytest.mark.parametrize(
    "file, message",
    [
        ({"name": "a-{00..02}.tar", "urls": ["http://127.0.0.1/a.tar"]}, "does not hold the same range"),
        ({"name": "a-{00..02}-{0..1}.tar", "urls": ["http://127.0.0.1/a-{00..02}-{0..1}.tar"]}, "more than one"),
        ({"name": "a-{05..02}.tar", "urls": ["http://127.0.0.1/a-{05..02}.tar"]}, "counts down"),
        ({"name": "a-{0..2}.tar", "urls": ["http://127.0.0.1/a-{0..2}.tar"], "md5": "0" * 32}, "one checksum"),
    ],
)
def test_malformed_numbered_files_are_refused(tmp_path, file, message):
    with pytest.raises(ValueError, match=f"dataset 'demo'.*{message}"):
        fetch_dataset("demo", {"files": [file]}, tmp_path / "demo", tmp_path / "lock.yaml", **FAST)


# ---- archives inside the archive (UCM-Captions' imgs.rar, MLRSNet's per-category .rar) ----


def nested_archive(tmp_path: Path) -> bytes:
    imgs = make_rar(tmp_path / "imgs.rar", [("imgs/1.tif", b"one", 0x30), ("imgs/2.tif", b"two", 0x30)])
    return make_zip(
        {
            "UCM_captions/dataset.json": b"{}",
            "UCM_captions/imgs.rar": imgs.read_bytes(),
            "Images/airplane.zip": make_zip({"airplane_00001.jpg": b"a"}),
            "Images/beach.zip": make_zip({"beach/beach_00001.jpg": b"b"}),
        }
    )


def test_archives_inside_the_archive_are_unpacked_into_folders(server, tmp_path):
    outer = nested_archive(tmp_path)
    url = server.add("data.zip", outer)
    nested = ["UCM_captions/imgs.rar", "Images/*.zip"]
    entry = {"files": [{"name": "data.zip", "urls": [url], "md5": md5(outer), "nested": nested}]}
    root = tmp_path / "demo"
    fetch_dataset("demo", entry, root, tmp_path / "lock.yaml", **FAST)
    assert extracted(root) == {
        "UCM_captions/dataset.json": b"{}",
        "UCM_captions/imgs/1.tif": b"one",
        "UCM_captions/imgs/2.tif": b"two",
        "Images/airplane/airplane_00001.jpg": b"a",
        "Images/beach/beach_00001.jpg": b"b",
    }
    assert json.loads((root / ".verified").read_text())["files"][0]["nested"] == nested
    fetch_dataset("demo", entry, root, tmp_path / "lock.yaml", **FAST)  # current marker: nothing to do
    assert len(server.requests_for("data.zip")) == 1


def test_nested_pattern_matching_nothing_fails_without_marker(server, tmp_path):
    outer = nested_archive(tmp_path)
    entry = {"files": [{"name": "data.zip", "urls": [server.add("data.zip", outer)], "nested": ["imgs.rar"]}]}
    root = tmp_path / "demo"
    with pytest.raises(ExtractError, match="'imgs.rar'"):
        fetch_dataset("demo", entry, root, tmp_path / "lock.yaml", **FAST)
    assert not (root / ".verified").exists()


def test_unsafe_archive_inside_the_archive_is_refused_without_marker(server, tmp_path):
    outer = make_zip({"Images/evil.zip": make_zip({"../../../escaped.txt": b"x"})})
    entry = {"files": [{"name": "data.zip", "urls": [server.add("data.zip", outer)], "nested": ["Images/*.zip"]}]}
    root = tmp_path / "demo"
    with pytest.raises(UnsafeArchiveError, match="evil.zip"):
        fetch_dataset("demo", entry, root, tmp_path / "lock.yaml", **FAST)
    assert not (root / ".verified").exists()
    assert not [p for p in tmp_path.rglob("escaped.txt")]


# ---- resume per archive ---------------------------------------------------------------------

# three archives installed in this order; c.zip replaces a file of b.zip, so the order matters
PARTS = {
    "a.zip": make_zip({"a/1.txt": b"a1", "images/a.jpg": b"a"}),
    "b.zip": make_zip({"b/1.txt": b"b1", "images/b.jpg": b"b", "shared.txt": b"from b"}),
    "c.zip": make_zip({"images/c.jpg": b"c", "shared.txt": b"from c"}),
}
PARTS_TREE = {
    "a/1.txt": b"a1",
    "b/1.txt": b"b1",
    "images/a.jpg": b"a",
    "images/b.jpg": b"b",
    "images/c.jpg": b"c",
    "shared.txt": b"from c",
}
PARTS_ENTRY = {
    "files": [{"name": n, "urls": [f"http://127.0.0.1:9/{n}"], "md5": md5(data)} for n, data in PARTS.items()]
}


def placed_parts(archives: Path) -> Path:
    archives.mkdir(parents=True, exist_ok=True)
    for name, data in PARTS.items():
        (archives / name).write_bytes(data)
    return archives


def mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_an_archive_failing_its_checksum_after_others_redoes_only_that_archive(tmp_path, caplog):
    archives, root, lock = placed_parts(tmp_path / "archives"), tmp_path / "raw", tmp_path / "lock.yaml"
    (archives / "c.zip").write_bytes(PARTS["c.zip"][:-5] + b"xxxxx")  # a corrupt transfer of the last one
    with pytest.raises(ChecksumError, match="c.zip"):
        install_archives("parts", PARTS_ENTRY, archives, root, lock, progress=False)
    assert (archives / "c.zip.bad").is_file() and not (root / ".verified").exists()
    assert sorted(p.name for p in (root / ".extracted").iterdir()) == ["a.zip", "b.zip"]
    before = mtimes(root)

    (archives / "c.zip").write_bytes(PARTS["c.zip"])  # fetched again
    caplog.set_level("INFO", logger="remoteclip.download")
    install_archives("parts", PARTS_ENTRY, archives, root, lock, progress=False)
    assert extracted(root) == PARTS_TREE
    after = mtimes(root)
    assert {k: after[k] for k in ("a/1.txt", "images/a.jpg", "b/1.txt", "images/b.jpg")} == {
        k: before[k] for k in ("a/1.txt", "images/a.jpg", "b/1.txt", "images/b.jpg")
    }
    installing = [r.getMessage() for r in caplog.records if "installing into" in r.getMessage()]
    assert installing == [f"parts/c.zip: installing into {root}"]
    assert sum("verified before" in r.getMessage() for r in caplog.records) == 2  # a.zip and b.zip not read


def test_an_archive_replaced_after_verification_is_verified_again(tmp_path):
    archives, root, lock = placed_parts(tmp_path / "archives"), tmp_path / "raw", tmp_path / "lock.yaml"
    install_archives("parts", PARTS_ENTRY, archives, root, lock, progress=False)
    (root / ".verified").unlink()
    (archives / "b.zip").write_bytes(PARTS["c.zip"])  # another file under the same name
    with pytest.raises(ChecksumError, match="b.zip"):
        install_archives("parts", PARTS_ENTRY, archives, root, lock, progress=False)


def test_an_earlier_archive_installed_again_reinstalls_every_later_one(tmp_path):
    archives, root, lock = placed_parts(tmp_path / "archives"), tmp_path / "raw", tmp_path / "lock.yaml"
    install_archives("parts", PARTS_ENTRY, archives, root, lock, progress=False)
    (root / ".verified").unlink()
    (root / ".extracted" / "b.zip").unlink()  # b.zip is installed again: it writes shared.txt
    install_archives("parts", PARTS_ENTRY, archives, root, lock, progress=False)
    assert extracted(root) == PARTS_TREE  # c.zip came after it again


# the install in a process of its own, killed (SIGKILL) in the middle of moving b.zip's
# members into place: `merge` is called again for each folder that exists already
KILLED_INSTALL = """
import os, signal, sys
from pathlib import Path
import yaml
from remoteclip.download import install_archives
from remoteclip.extract import staging, unpack

archives, root, lock, entry = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), yaml.safe_load(sys.argv[4])
real, calls = staging.merge, [0]

def merge(src, dst):
    if ".extracting-b.zip" in str(src):
        calls[0] += 1
        if calls[0] == 2:  # b/ has moved, images/ and shared.txt have not
            os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst)

staging.merge = unpack.merge = merge
install_archives("parts", entry, archives, root, lock, progress=False)
"""


def test_an_install_killed_mid_archive_redoes_that_archive_only(tmp_path):
    archives, lock = placed_parts(tmp_path / "archives"), tmp_path / "lock.yaml"
    whole = tmp_path / "whole"
    install_archives("parts", PARTS_ENTRY, archives, whole, lock, progress=False)

    root = tmp_path / "raw"
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-c", KILLED_INSTALL, str(archives), str(root), str(lock), json.dumps(PARTS_ENTRY)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (root / "b" / "1.txt").is_file() and not (root / "images" / "b.jpg").exists()  # half of b.zip
    assert sorted(p.name for p in (root / ".extracted").iterdir()) == ["a.zip"]
    first = mtimes(root)["images/a.jpg"]

    install_archives("parts", PARTS_ENTRY, archives, root, lock, progress=False)
    assert extracted(root) == extracted(whole) == PARTS_TREE
    assert mtimes(root)["images/a.jpg"] == first  # a.zip was not extracted again
    assert not [p for p in root.iterdir() if p.name.startswith(".extracting")]
    assert (root / ".verified").read_text() == (whole / ".verified").read_text()


def test_a_dataset_installed_before_files_had_markers_is_not_unpacked_again(tmp_path):
    """The workflow's per-file jobs on a dataset whose `.verified` came from the one-job install
    (no file markers, archives deleted): the markers are written from it, nothing is read."""
    from remoteclip.download import install_archive, verify_archive

    archives, root, lock = placed_parts(tmp_path / "archives"), tmp_path / "raw", tmp_path / "lock.yaml"
    install_archives("parts", PARTS_ENTRY, archives, root, lock, progress=False)
    shutil.rmtree(root / ".extracted")
    shutil.rmtree(archives)
    before = mtimes(root)
    for name in PARTS:
        record = verify_archive("parts", PARTS_ENTRY, name, archives, root, lock, progress=False)
        install_archive("parts", PARTS_ENTRY, name, archives, root, record, progress=False)
    assert sorted(p.name for p in (root / ".extracted").iterdir()) == sorted(PARTS)
    assert {k: v for k, v in mtimes(root).items() if not k.startswith(".extracted")} == before
