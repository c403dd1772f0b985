"""WebDataset shards: round trip through the webdataset reader, determinism, and images
as they come in real data."""

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from remoteclip.shards import ShardSettings, build_shards, read_caption_rows, sample_key
from remoteclip.synthetic.scenes import SCENES, render_scene


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


def test_round_trip_through_webdataset(tmp_path, rows):
    settings = ShardSettings(max_side=64, samples_per_shard=10, seed=3)
    manifest = build_shards(rows, tmp_path / "shards", settings, run="r")
    samples = read_back(tmp_path / "shards")
    assert len(samples) == len(rows) == manifest["total"]
    assert [s["samples"] for s in manifest["shards"]] == [10, 10, 5]
    sizes = json.loads((tmp_path / "shards/sizes.json").read_text())
    assert sizes == {"shard-000000.tar": 10, "shard-000001.tar": 10, "shard-000002.tar": 5}
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
    # shuffled across sources: the first shard is not one source
    assert len({m["source"] for _, _, _, m in samples[:10]}) > 1


def test_byte_identical_rebuilds_and_worker_count_does_not_matter(tmp_path, rows):
    a = build_shards(rows, tmp_path / "a", ShardSettings(max_side=64, samples_per_shard=7, workers=1))
    b = build_shards(rows, tmp_path / "b", ShardSettings(max_side=64, samples_per_shard=7, workers=2))
    assert [s["sha256"] for s in a["shards"]] == [s["sha256"] for s in b["shards"]]
    for s in a["shards"]:
        assert hashlib.sha256((tmp_path / "a" / s["name"]).read_bytes()).hexdigest() == s["sha256"]
    assert (tmp_path / "a/manifest.json").read_bytes() == (tmp_path / "b/manifest.json").read_bytes()
    with tarfile.open(tmp_path / "a" / a["shards"][0]["name"]) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    c = build_shards(rows, tmp_path / "c", ShardSettings(max_side=64, samples_per_shard=7, seed=1))
    assert [s["sha256"] for s in c["shards"]] != [s["sha256"] for s in a["shards"]]


def test_dedup_removal_is_applied(tmp_path, rows):
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    removed = {sample_key(rows[0]), sample_key(rows[-1])}
    kept, dropped = read_caption_rows([path], removed)
    assert dropped == 2 and len(kept) == len(rows) - 2
    assert all(sample_key(r) not in removed for r in kept)


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
