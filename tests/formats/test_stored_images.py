"""Images read in place from tars and Parquet files by the stages that decode training images:
pHash (with its cache) and shard encoding give what they give for the same images as files."""

from __future__ import annotations

import json
import os
import tarfile

from remoteclip.config import dataset_spec
from remoteclip.convert import ret_dataset
from remoteclip.dedup import caption_items, hash_source, read_hashes
from remoteclip.shards import ShardSettings
from remoteclip.shards.build import build_shards
from remoteclip.shards.plan import plan_source
from remoteclip.stored import MAX_OPEN, _files

from .web_fixtures import noise_image, write_git10m, write_rs5m, write_tar

RS5M = {"image_extensions": ["img_content"], "captions": ["caption"]}


def caption_rows(tmp_path, name, fmt, root, options):
    (root / ".verified").write_text("{}")
    spec = dataset_spec(name, {"group": "WEB", "format": fmt, "root": str(root), "options": options})
    out = tmp_path / "captions" / f"{name}.jsonl"
    ret_dataset(spec, out, out.with_suffix(".report.json"))
    return out, [json.loads(line) for line in out.read_text().splitlines()]


def as_files(rows, images: list[bytes], folder):
    """The same images unpacked as files: the rows a file-based source would have."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (row, data) in enumerate(zip(rows, images)):
        path = folder / f"{i}.img"
        path.write_bytes(data)
        out.append({**{k: v for k, v in row.items() if k != "stored"}, "image": str(path)})
    return out


def jpegs(manifest_dir) -> list[bytes]:
    out = []
    for tar in sorted(manifest_dir.glob("sources/*/*/*.tar")):
        with tarfile.open(tar) as archive:
            out += [archive.extractfile(m).read() for m in archive.getmembers() if m.name.endswith(".jpg")]
    return out


def test_hashes_and_shards_of_tar_and_parquet_sources_equal_those_of_the_unpacked_images(tmp_path):
    tars = write_rs5m(tmp_path / "RS5M", per_tar=2)
    # one member that is no image: a counted, unreadable sample, not a crash
    write_tar(
        tmp_path / "RS5M/zz-broken.tar",
        [("bad.img_content", b"not an image"), ("bad.caption", b"a caption without its image")],
    )
    web_images = list(tars.values()) + [b"not an image"]
    git_images = [noise_image(50 + i) for i in range(4)] + [b"\xff\xd8 truncated jpeg"]
    write_git10m(tmp_path / "Git10M/data/train-00000-of-00001.parquet", row_group_size=2, images=git_images)

    for name, fmt, options, images in (
        ("rs5m", "webdataset", RS5M, web_images),
        ("git10m", "parquet", {}, git_images),
    ):
        captions, rows = caption_rows(tmp_path, name, fmt, tmp_path / name.upper().replace("GIT10M", "Git10M"), options)
        assert all("stored" in r for r in rows) and len(rows) == len(images)
        counts = hash_source(caption_items(captions), tmp_path / f"{name}.tsv", tmp_path / f"{name}.cache.tsv")
        assert (counts["hashed"], counts["failed"]) == (len(rows), 1)
        files = as_files(rows, images, tmp_path / f"{name}-files")
        file_captions = tmp_path / f"{name}-files.jsonl"
        file_captions.write_text("".join(json.dumps(r) + "\n" for r in files))
        hash_source(caption_items(file_captions), tmp_path / f"{name}-files.tsv", tmp_path / f"{name}-files.cache.tsv")
        in_place, as_file = read_hashes(tmp_path / f"{name}.tsv"), read_hashes(tmp_path / f"{name}-files.tsv")
        assert list(in_place[1]) == list(as_file[1]) and len(in_place[2]) == len(as_file[2]) == 1
        assert (
            "unreadable image" in in_place[2][0][1] and " at 0x" not in in_place[2][0][1]
        )  # no address: same bytes each run

        settings = ShardSettings(samples_per_shard=4)
        manifest = build_shards(rows, tmp_path / f"{name}-shards", settings, run=name)
        build_shards(files, tmp_path / f"{name}-file-shards", settings, run=name)
        assert manifest["per_source"][name] == len(rows) - 1 and manifest["skipped"]["total"] == 1
        assert jpegs(tmp_path / f"{name}-shards") == jpegs(tmp_path / f"{name}-file-shards")


def test_a_rewritten_tar_is_hashed_again_and_a_moved_image_changes_its_chunk(tmp_path):
    write_rs5m(tmp_path / "RS5M", per_tar=2)
    captions, rows = caption_rows(tmp_path, "rs5m", "webdataset", tmp_path / "RS5M", RS5M)
    hashes, cache = tmp_path / "h.tsv", tmp_path / "cache.tsv"
    assert hash_source(caption_items(captions), hashes, cache)["hashed"] == 4
    assert hash_source(caption_items(captions), hashes, cache)["cached"] == 4
    tar = tmp_path / "RS5M/rs3-train-0000.tar"
    stat = tar.stat()
    os.utime(tar, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same bytes, rewritten
    again = hash_source(caption_items(captions), hashes, cache)
    assert (again["hashed"], again["cached"]) == (2, 2)

    settings = ShardSettings(samples_per_shard=2)
    before = plan_source(captions, "rs5m", settings)["chunks"]
    moved = [
        {**r, "stored": {**r["stored"], "offset": r["stored"]["offset"] + 512}} if i == 3 else r
        for i, r in enumerate(rows)
    ]
    captions.write_text("".join(json.dumps(r) + "\n" for r in moved))
    after = plan_source(captions, "rs5m", settings)["chunks"]
    assert [c["digest"] for c in before][0] == [c["digest"] for c in after][0]
    assert [c["digest"] for c in before][1] != [c["digest"] for c in after][1]


def test_at_most_max_open_container_files_stay_open(tmp_path):
    from remoteclip.imageio import load_sample_rgb

    for i in range(MAX_OPEN + 3):
        tar = write_tar(tmp_path / f"{i}.tar", [(f"{i}.jpg", noise_image(i))])
        with tarfile.open(tar) as archive:
            member = archive.getmembers()[0]
        load_sample_rgb(f"{tar}/{i}.jpg", {"tar": str(tar), "offset": member.offset_data, "size": member.size})
        assert len(_files) <= MAX_OPEN
    open_fds = {
        os.readlink(f"/proc/self/fd/{fd}")
        for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}")
    }
    assert str(tmp_path / f"{MAX_OPEN + 2}.tar") in open_fds and str(tmp_path / "0.tar") not in open_fds
