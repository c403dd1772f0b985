"""WebDataset shards per source chunk: round trip through the webdataset reader, determinism,
images as they come in real data, chunks shared between runs and rebuilt only when their rows
change, a killed build that redoes one chunk, and each run's removals in its manifest."""

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from remoteclip.shards import ShardSettings, read_run_shards, sample_key, settings_key
from remoteclip.shards.build import build_shards, build_source, write_caption_files
from remoteclip.shards.index import index_path, read_index, scan_tar
from remoteclip.shards.manifest import write_run_manifest
from remoteclip.shards.plan import SourceChanged, find_chunk, plan_source, read_chunk_rows, read_plan
from remoteclip.synthetic.scenes import SCENES, render_scene

REPO = Path(__file__).resolve().parents[1]


def scene(i, size=96):
    kinds = list(SCENES)
    return Image.fromarray(render_scene(np.random.default_rng(i), kinds[i % len(kinds)], size).image)


@pytest.fixture
def rows(tmp_path):
    out = []
    for i in range(23):
        path = tmp_path / "img" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        scene(i, 96 + 8 * (i % 3)).save(path)
        out.append(
            {
                "image": str(path),
                "captions": [f"caption {i} number {k} ." for k in range(5)],
                "source": "a" if i % 2 else "b",
                "split": "train",
                "objects": {"ship": i},
            }
        )
    big = tmp_path / "img" / "big.png"
    Image.fromarray(np.concatenate([np.asarray(scene(100, 128))] * 2, 1)).save(big)
    for x in (0, 128):  # two tiles of one file
        out.append(
            {
                "image": str(big),
                "captions": [f"tile {x} ."] * 5,
                "source": "c",
                "split": "train",
                "crop": [x, 0, 128, 128],
            }
        )
    return out


def read_back(out_dir):
    urls = sorted(str(p) for p in out_dir.glob("shard-*.tar"))
    ds = wds.WebDataset(urls, shardshuffle=False).decode("pil").to_tuple("__key__", "jpg", "txt", "json")
    return list(ds)


def files_of(folder):
    """{name: (inode, mtime_ns, sha256)} of every file below `folder`: what a rebuild would change."""
    return {
        str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_round_trip_through_webdataset(tmp_path, rows):
    settings = ShardSettings(max_side=64, samples_per_shard=10, seed=3)
    manifest = build_shards(rows, tmp_path / "shards", settings, run="r")
    samples = read_back(tmp_path / "shards")
    assert len(samples) == len(rows) == manifest["total"]
    # one chunk of up to 10 rows per tar, per source in the order the sources come
    assert [(s["source"], s["samples"]) for s in manifest["shards"]] == [
        ("b", 10),
        ("b", 2),
        ("a", 10),
        ("a", 1),
        ("c", 2),
    ]
    sizes = json.loads((tmp_path / "shards/sizes.json").read_text())
    assert sizes == {f"shard-{k:06d}.tar": n for k, n in enumerate([10, 2, 10, 1, 2])}
    seen = {}
    for _key, image, text, meta in samples:
        assert max(image.size) == 64 and image.mode == "RGB"
        assert text in meta["captions"]
        seen[meta["image"] + str(meta.get("crop"))] = meta
    assert len(seen) == len(rows)  # every sample exactly once
    by_key = {r["image"] + str(r.get("crop")): r for r in rows}
    for k, meta in seen.items():
        assert meta["captions"] == by_key[k]["captions"] and meta["source"] == by_key[k]["source"]
    tiles = [m for m in seen.values() if m["crop"]]
    assert sorted(m["original_size"] for m in tiles) == [[128, 128], [128, 128]]
    assert manifest["per_source"] == {"a": 11, "b": 12, "c": 2}
    # the run's links lead to the chunks, each with its member index beside it
    for shard in manifest["shards"]:
        link = tmp_path / "shards" / shard["name"]
        assert link.is_symlink() and link.resolve() == (tmp_path / "shards" / shard["chunk"]).resolve()
        assert np.array_equal(read_index(index_path(link)), scan_tar(link))


def test_byte_identical_rebuilds_and_worker_count_does_not_matter(tmp_path, rows):
    a = build_shards(rows, tmp_path / "a", ShardSettings(max_side=64, samples_per_shard=7, workers=1))
    b = build_shards(rows, tmp_path / "b", ShardSettings(max_side=64, samples_per_shard=7, workers=2))
    assert [s["sha256"] for s in a["shards"]] == [s["sha256"] for s in b["shards"]]
    for s in a["shards"]:
        assert hashlib.sha256((tmp_path / "a" / s["name"]).read_bytes()).hexdigest() == s["sha256"]
    assert (tmp_path / "a/manifest.json").read_bytes() == (tmp_path / "b/manifest.json").read_bytes()
    chunks = {k: v[2] for k, v in files_of(tmp_path / "a" / "sources").items() if "plan" not in k}
    assert len(chunks) == 3 * 5  # tar, index, record of 2 + 2 + 1 chunks: each byte-identical
    assert chunks == {k: v[2] for k, v in files_of(tmp_path / "b" / "sources").items() if "plan" not in k}
    with tarfile.open(tmp_path / "a" / a["shards"][0]["name"]) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    c = build_shards(rows, tmp_path / "c", ShardSettings(max_side=64, samples_per_shard=7, seed=1))
    assert [s["sha256"] for s in c["shards"]] != [s["sha256"] for s in a["shards"]]


def test_dedup_removal_is_applied_by_the_manifest(tmp_path, rows):
    removed = {sample_key(rows[0]), sample_key(rows[-1])}
    manifest = build_shards(rows, tmp_path / "s", ShardSettings(max_side=32, samples_per_shard=10), removed=removed)
    assert manifest["removed_by_dedup"] == 2 and manifest["total"] == len(rows) - 2
    excluded = [k for s in manifest["shards"] for k in s["excluded"]]
    assert sorted(excluded) == ["b-000000000", "c-000000001"]  # rows[0]: b's first, rows[-1]: c's second
    listed = read_run_shards(tmp_path / "s")
    from remoteclip.train.data import ShardIndex

    index = ShardIndex.build(listed.paths, listed.sizes, listed.excluded)
    assert len(index) == len(rows) - 2 and not {index.key(i) for i in range(len(index))} & set(excluded)
    # the training fingerprint sees the removals: the same tars with other removals are other data
    build_shards(rows, tmp_path / "t", ShardSettings(max_side=32, samples_per_shard=10))
    assert listed.digests != read_run_shards(tmp_path / "t").digests


def test_runs_that_share_a_source_share_its_chunks(tmp_path, rows):
    """Two runs, {a, b} and {a}: a's chunks are built once and both manifests link them."""
    settings = ShardSettings(max_side=32, samples_per_shard=4)
    captions = write_caption_files(rows, tmp_path / "captions")
    root = tmp_path / "shards"
    plan_a = build_source(captions["a"], "a", root, settings)
    plan_b = build_source(captions["b"], "b", root, settings)
    chunks = lambda: {n: v for n, v in files_of(root / "sources").items() if "plan" not in n}  # noqa: E731
    before = chunks()
    assert build_source(captions["a"], "a", root, settings) == plan_a  # the second run's a: nothing built
    assert chunks() == before  # the same inodes, times and bytes
    both = write_run_manifest("ab", [plan_a, plan_b], set(), root / "ab", settings.identity())
    only_a = write_run_manifest("a", [plan_a], set(), root / "a", settings.identity())
    chunks_a = [s["chunk"] for s in both["shards"] if s["source"] == "a"]
    assert chunks_a == [s["chunk"] for s in only_a["shards"]] and len(chunks_a) == 3  # 11 rows, 4 per chunk
    assert {(root / "ab" / s["chunk"]).resolve() for s in only_a["shards"]} == {
        (root / "a" / s["name"]).resolve() for s in only_a["shards"]
    }


def test_a_chunk_whose_rows_changed_is_rebuilt_and_the_others_are_reused(tmp_path, rows):
    settings = ShardSettings(max_side=32, samples_per_shard=4)
    captions = write_caption_files(rows, tmp_path / "captions")["a"]
    root = tmp_path / "shards"
    plan_path = build_source(captions, "a", root, settings)
    before = files_of(plan_path.parent)
    lines = captions.read_text().splitlines(keepends=True)
    changed = json.loads(lines[5])
    changed["captions"][0] = "a changed caption ."
    lines[5] = json.dumps(changed) + "\n"  # row 5: the second chunk (rows 4-7)
    old_plan = read_plan(plan_path)
    captions.write_text("".join(lines))
    # a job that reads rows planned before the change refuses them
    with pytest.raises(SourceChanged, match=r"a\.jsonl changed since its chunks were planned \(rows 4-7 of chunk 1\)"):
        read_chunk_rows(captions, find_chunk(old_plan, 1, old_plan["chunks"][1]["digest"]))
    build_source(captions, "a", root, settings)
    after = files_of(plan_path.parent)
    stems = lambda files: {n.split(".")[0] for n in files if n != "plan.json"}  # noqa: E731
    gone, new = stems(before) - stems(after), stems(after) - stems(before)
    assert [s[:6] for s in gone] == ["000001"] and [s[:6] for s in new] == ["000001"]  # the old files removed
    kept = {n: v for n, v in before.items() if n != "plan.json" and not n.startswith("000001")}
    assert kept and all(after[n] == v for n, v in kept.items())  # not rewritten: same inode, time and bytes
    new_chunk = root / "sources/a" / read_plan(plan_path)["key"] / f"{sorted(new)[0]}.tar"
    with tarfile.open(new_chunk) as tar:
        meta = json.loads(tar.extractfile(f"a-{5:09d}.json").read())
    assert meta["captions"][0] == "a changed caption ."


def test_the_settings_key_names_what_decides_the_bytes(tmp_path):
    base = settings_key(ShardSettings(max_side=448, seed=0))
    assert base == settings_key(ShardSettings(max_side=448, seed=0, workers=8))  # how many write it: no
    assert base.startswith("448px-q95-n1000-") and base != settings_key(ShardSettings(max_side=224, seed=0))
    assert base != settings_key(ShardSettings(max_side=448, seed=1))  # the stored caption is a seeded pick
    model = tmp_path / "sr.pt2"
    model.write_bytes(b"one model")
    upscaled = ShardSettings(max_side=448, seed=0, super_resolution={"model": str(model), "device": "cpu"})
    first = settings_key(upscaled)
    model.write_bytes(b"another model")  # the same path, other weights: other bytes
    os.utime(model, ns=(1, 1))
    assert len({base, first, settings_key(upscaled)}) == 3


def test_malformed_and_empty_caption_files_are_named(tmp_path):
    settings = ShardSettings(max_side=32, samples_per_shard=2)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.jsonl: no caption rows, so source e has nothing"):
        plan_source(empty, "e", settings)
    bad = tmp_path / "bad.jsonl"
    good = json.dumps({"image": "x.png", "captions": ["c"] * 5, "source": "s"})
    bad.write_text(f"{good}\n{good}\n{good}\n{{not json\n")
    plan = plan_source(bad, "s", settings)
    with pytest.raises(ValueError, match=r"bad\.jsonl:4: malformed caption row"):
        read_chunk_rows(bad, plan["chunks"][1])


def _write_odd_images(root):
    """Images as real datasets ship them; returns {name: expected size after loading or None}."""
    base = scene(5, 64)
    expected = {}

    def save(name, image, size, **kw):
        image.save(root / name, **kw)
        expected[name] = size

    save("ucm.tif", base, (64, 64))
    save("hrsc.bmp", base, (64, 64))
    save("palette.png", base.convert("P", palette=Image.Palette.ADAPTIVE), (64, 64))
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    save("alpha.png", rgba, (64, 64))
    wide = np.zeros((40, 64), np.uint16)
    wide[:] = np.linspace(0, 60000, 64, dtype=np.uint16)
    save("sixteen.png", Image.fromarray(wide), (64, 40))
    save("cmyk.jpg", base.convert("CMYK"), (64, 64))
    tall = base.crop((0, 0, 64, 32))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    save("exif.jpg", tall, (32, 64), exif=exif)
    buf = io.BytesIO()
    base.save(buf, "JPEG")
    (root / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    expected["truncated.jpg"] = None
    (root / "corrupt.png").write_bytes(b"not an image at all")
    expected["corrupt.png"] = None
    expected["missing.jpg"] = None
    return expected


def test_images_as_they_come_in_real_data(tmp_path, caplog):
    root = tmp_path / "odd"
    root.mkdir()
    expected = _write_odd_images(root)
    rows = [{"image": str(root / name), "captions": [name] * 5, "source": "odd"} for name in expected]
    manifest = build_shards(rows, tmp_path / "shards", ShardSettings(max_side=256, samples_per_shard=100))
    samples = {meta["image"].rsplit("/", 1)[-1]: (image, meta) for _, image, _, meta in read_back(tmp_path / "shards")}
    for name, size in expected.items():
        if size is None:
            assert name not in samples
            assert any(name in key for key in manifest["skipped"]["images"]), name
        else:
            image, meta = samples[name]
            assert image.mode == "RGB" and image.size == size, name
    assert manifest["skipped"]["total"] == 3
    stretched = np.asarray(samples["sixteen.png"][0])
    assert stretched[..., 0].min() < 10 and stretched[..., 0].max() > 245  # 16 bit scaled into 8 bit
    assert any("truncated.jpg" in r.getMessage() for r in caplog.records)


KILL_SCRIPT = """
import sys
from remoteclip.shards import ShardSettings
from remoteclip.shards.build import build_source
build_source(sys.argv[1], "k", sys.argv[2], ShardSettings(max_side=32, samples_per_shard=3))
"""


def test_a_killed_build_redoes_one_chunk_and_ends_byte_identical(tmp_path):
    """SIGKILL while chunk 3 is being encoded (its fourth image is a FIFO that blocks the reader
    until the kill), then a rerun: chunks 0-2 are not touched, the rest is built, and every
    file equals an uninterrupted build's."""
    rows, folder = [], tmp_path / "img"
    folder.mkdir()
    for i in range(18):  # six chunks of three rows
        path = folder / f"{i}.png"
        scene(i, 48).save(path)
        rows.append({"image": str(path), "captions": [f"scene {i} ."] * 5, "source": "k"})
    captions = write_caption_files(rows, tmp_path / "captions")["k"]
    reference = tmp_path / "reference"
    build_source(captions, "k", reference, ShardSettings(max_side=32, samples_per_shard=3))
    blocking = folder / "10.png"  # row 10: chunk 3 (rows 9-11)
    image = blocking.read_bytes()
    blocking.unlink()
    os.mkfifo(blocking)
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(captions), str(out)], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(list(out.rglob("0*.json"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # blocked on the FIFO inside chunk 3
        assert proc.poll() is None, "the build ended before it was killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = files_of(out / "sources")
    records = sorted(n.rsplit("/", 1)[-1][:6] for n in done if re.search(r"/\d{6}-[0-9a-f]{16}\.json$", n))
    assert records == ["000000", "000001", "000002"]  # chunk 3 was in progress, nothing of it complete
    blocking.unlink()
    blocking.write_bytes(image)
    build_source(captions, "k", out, ShardSettings(max_side=32, samples_per_shard=3))
    after = files_of(out / "sources")
    assert all(after[n] == v for n, v in done.items() if "plan" not in n)  # chunks 0-2 not redone
    assert {n: v[2] for n, v in after.items()} == {n: v[2] for n, v in files_of(reference / "sources").items()}


def test_runs_that_share_sources_plan_each_source_once_in_the_workflow(tmp_path):
    """The DAG: two runs over {t_rsicd, t_dota} and {t_rsicd} plan (and so encode) each source
    once; each run gets its own manifest."""
    from workflow_helpers import snakemake, tiny_config, write_config

    config = tiny_config(tmp_path)
    config["datasets"] = {k: config["datasets"][k] for k in ("t_rsicd", "t_dota")}
    config["runs"] = {"both": {"sources": ["t_rsicd", "t_dota"]}, "ret": {"sources": ["t_rsicd"]}}
    config["evaluation"] = {"models": {}}
    proc = snakemake(
        tmp_path, write_config(tmp_path, config), "results/shards/both", "results/shards/ret", "-n", "--quiet", "rules"
    )
    counts = {
        line.split()[0]: int(line.split()[1])
        for line in proc.stdout.splitlines()
        if re.fullmatch(r"\w+\s+\d+", line.strip())
    }
    assert counts["plan_shards"] == 2 and counts["shard_manifest"] == 2 and counts["dedup"] == 2, counts
