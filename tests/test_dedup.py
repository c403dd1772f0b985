"""pHash de-duplication: exact block search, planted near-duplicates, the leakage filter."""

import io
import json
import re

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from conftest import synthesize_dataset
from remoteclip.dedup import (
    brute_pairs_across,
    brute_pairs_within,
    deduplicate,
    duplicate_groups,
    hash_items,
    pairs_across,
    pairs_within,
    phash,
    read_hashes,
    read_removed,
    write_hashes,
    write_removed,
)
from remoteclip.dedup.search import ball, substrings
from remoteclip.synthetic.scenes import SCENES, render_scene


def planted(rng, n, close_pairs, max_flip):
    hashes = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, n, dtype=np.uint64)
    for _ in range(close_pairs):
        i, j = rng.choice(n, 2, replace=False)
        flip = rng.choice(64, rng.integers(0, max_flip + 1), replace=False)
        hashes[j] = hashes[i] ^ np.uint64(sum(1 << int(b) for b in flip))
    return hashes


@pytest.mark.parametrize(
    "seed, max_distance, blocks", [(0, 1, None), (1, 2, None), (2, 3, None), (3, 1, 4), (4, 0, 1), (5, 3, 8)]
)
def test_block_search_equals_brute_force(seed, max_distance, blocks):
    rng = np.random.default_rng(seed)
    hashes = planted(rng, 3000, 300, max_distance + 2)
    fast = pairs_within(hashes, max_distance, blocks)
    assert np.array_equal(fast, brute_pairs_within(hashes, max_distance))
    assert len(fast) > 50


def test_cross_search_equals_brute_force():
    rng = np.random.default_rng(7)
    both = planted(rng, 2000, 400, 3)
    left, right = both[:1000], both[1000:]
    d = np.bitwise_count(left[:, None] ^ right[None, :])
    expected = np.argwhere(d <= 2)
    assert np.array_equal(pairs_across(left, right, 2), expected)
    assert len(expected) > 10


def test_a_hand_picked_split_that_cannot_finish_is_refused():
    with pytest.raises(ValueError, match="use more blocks or none"):
        pairs_within(np.zeros(3, np.uint64), 15, blocks=1)  # 10^14 probes per hash


# --- exact at every threshold up to 16: pairs at, below and above it ------------------------------

EDGE = np.uint64(1 << 63)


def at_the_edges(r, rng):
    """Hashes of three kinds around radius r: random bases, and for each base copies at distance
    r - 1, r and r + 1 (bits flipped at both ends of the 64-bit word, bit 63 included); all-zero
    and all-one words with neighbours at r and r + 1; and 300 copies of one hash (video frames)
    with a frame at r from them."""
    bases = rng.integers(0, 2**64 - 1, 40, dtype=np.uint64, endpoint=True)
    bases[0] = 0
    bases[1] = np.uint64(2**64 - 1)
    out = [bases]
    for d in (r - 1, r, r + 1):
        if d < 0:
            continue
        for k, base in enumerate(bases):
            # the flipped bits: from the top (63, 62, ...) for even bases, from both ends for odd ones
            bits = (
                list(range(63, 63 - d, -1))
                if k % 2 == 0
                else [b for pair in zip(range(64), range(63, 31, -1)) for b in pair][:d]
            )
            out.append(np.array([base ^ np.uint64(sum(1 << b for b in bits))], np.uint64))
    frames = np.full(300, rng.integers(0, 2**63, dtype=np.uint64) | EDGE, np.uint64)
    out += [frames, frames[:1] ^ np.uint64((1 << r) - 1)]
    return np.concatenate(out)


@pytest.mark.parametrize("r", range(17))
def test_pairs_equal_brute_force_at_below_and_above_every_radius(r):
    rng = np.random.default_rng(100 + r)
    hashes = at_the_edges(r, rng)
    hashes = hashes[rng.permutation(len(hashes))]
    expected = brute_pairs_within(hashes, r)
    d = np.bitwise_count(hashes[expected[:, 0]] ^ hashes[expected[:, 1]])
    assert (d == r).sum() >= 40 and ((d < r).sum() >= 40 or r == 0)  # pairs at the radius and inside it
    assert np.array_equal(pairs_within(hashes, r), expected)
    left, right = hashes[: len(hashes) // 3], hashes[len(hashes) // 3 :]
    cross = brute_pairs_across(left, right, r)
    assert np.array_equal(pairs_across(left, right, r), cross)
    assert np.array_equal(pairs_across(right, left, r), brute_pairs_across(right, left, r))
    # the same pairs through hand-picked splits: table and binary-search look-ups, one
    # substring per bit of radius or fewer than that, several threads
    for blocks in (2, 3, 4, 5, r + 1, r + 2):
        if sum(ball(s.width, s.radius) for s in substrings(64, blocks, r)) <= 50_000:
            assert np.array_equal(pairs_across(left, right, r, blocks=blocks, workers=2), cross), blocks


def test_search_in_chunks_finds_the_pairs_across_chunk_boundaries(monkeypatch):
    from remoteclip.dedup import search

    rng = np.random.default_rng(5)
    hashes = at_the_edges(6, rng)
    hashes = hashes[rng.permutation(len(hashes))]
    monkeypatch.setattr(search, "CHUNK", 37)  # many chunks over ~480 distinct values
    assert np.array_equal(pairs_within(hashes, 6), brute_pairs_within(hashes, 6))
    left, right = hashes[:100], hashes[100:]
    assert np.array_equal(pairs_across(left, right, 6), brute_pairs_across(left, right, 6))
    groups = duplicate_groups(hashes, 6)
    assert np.array_equal(groups, brute_groups(hashes, 6))


def _scene_images(n, offset=0):
    kinds = list(SCENES)
    return [
        Image.fromarray(render_scene(np.random.default_rng(offset + i), kinds[i % len(kinds)], 128).image)
        for i in range(n)
    ]


def _near_copies(image):
    small = image.resize((96, 96), Image.Resampling.BICUBIC).resize((128, 128), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=60)
    return {
        "rescaled": small,
        "recompressed": Image.open(buf),
        "brightened": ImageEnhance.Brightness(image).enhance(1.05),
    }


def test_planted_near_duplicates_found_and_distinct_images_not():
    originals = _scene_images(25)
    hashes, copies = {}, []
    for i, image in enumerate(originals):
        hashes[f"a:{i}"] = phash(image)
        for kind, copy in _near_copies(image).items():
            hashes[f"b:{i}-{kind}"] = phash(copy)
            copies.append((f"a:{i}", f"b:{i}-{kind}"))
    # a near-duplicate threshold: every planted copy is found, no two distinct scenes are
    rows, _ = deduplicate(hashes, {}, threshold=5, source_order=["a", "b"])
    assert {(r["collides_with"], r["image"]) for r in rows} == set(copies)
    # the paper's threshold (< 2): imagehash's median-split pHash has exactly 32 one bits, so
    # distances are even and "< 2" means an identical hash; exactly those copies are found
    rows, _ = deduplicate(hashes, {}, threshold=2, source_order=["a", "b"])
    order = sorted(hashes, key=lambda k: (k[0], k))
    first_with_hash = {}
    for key in order:
        first_with_hash.setdefault(hashes[key], key)
    expected = {(first_with_hash[hashes[k]], k) for k in order if first_with_hash[hashes[k]] != k}
    assert {(r["collides_with"], r["image"]) for r in rows} == expected
    assert sum(hashes[a] == hashes[b] for a, b in copies) > len(copies) / 2


def test_pairwise_distances_are_even():
    values = [phash(im) for im in _scene_images(12, offset=100)]
    assert all(bin(v).count("1") == 32 for v in values)


def test_keep_rule_is_deterministic_and_follows_source_order():
    train = {"b:x.png": 5, "a:y.png": 5, "a:z.png": 5, "c:w.png": 6}
    rows, summary = deduplicate(train, {}, threshold=2, source_order=["b", "a", "c"])
    assert [(r["image"], r["collides_with"]) for r in rows] == [("a:y.png", "b:x.png"), ("a:z.png", "b:x.png")]
    assert summary["per_source"]["a"] == {"images": 2, "removed": 2, "kept": 0}
    rows2, _ = deduplicate(dict(reversed(list(train.items()))), {}, threshold=2, source_order=["b", "a", "c"])
    assert rows2 == rows


def test_chains_form_one_group():
    train = {"s:1": 0b0000, "s:2": 0b0011, "s:3": 0b1111}  # 1~2 and 2~3 at distance 2, 1 and 3 at 4
    rows, _ = deduplicate(train, {}, threshold=3, source_order=["s"])
    assert sorted(r["image"] for r in rows) == ["s:2", "s:3"]


def test_test_split_image_in_training_source_is_removed_and_listed(tmp_path):
    test_root, train_root = tmp_path / "rsicd", tmp_path / "dota"
    synthesize_dataset(test_root, "karpathy", 10, splits={"train": 0.5, "test": 0.5})
    synthesize_dataset(train_root, "dota", 8)
    data = json.loads((test_root / "dataset_rsicd.json").read_text())
    test_files = [test_root / "RSICD_images" / i["filename"] for i in data["images"] if i["split"] == "test"]
    leaked = train_root / "train/images/P0003.png"
    Image.open(test_files[2]).save(leaked)  # the JPEG test image re-encoded as PNG in a training source
    train_items = [(f"dota:{p}", str(p), None) for p in sorted((train_root / "train/images").glob("*.png"))]
    test_items = [(f"rsicd:{p.name}", str(p), None) for p in test_files]
    train_h, _ = hash_items(train_items)
    test_h, _ = hash_items(test_items)
    write_hashes(tmp_path / "h.tsv", train_h, [], 64)
    keys, values, _ = read_hashes(tmp_path / "h.tsv")
    assert dict(zip(keys, values.tolist())) == train_h
    rows, summary = deduplicate(train_h, {"rsicd": test_h}, threshold=2, source_order=["dota"])
    write_removed(tmp_path / "removed.tsv", rows)
    assert read_removed(tmp_path / "removed.tsv") == {f"dota:{leaked}"}
    assert rows[0]["collides_with"] == f"rsicd:{test_files[2].name}" and rows[0]["reason"] == "test leak: rsicd"
    assert summary["pairs"] == [
        {"source": "dota", "collides_with": "rsicd", "reason": "test leak: rsicd", "removed": 1}
    ]


def test_unreadable_image_is_reported_not_hashed(tmp_path):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    _scene_images(1)[0].save(good)
    bad.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    hashes, failures = hash_items([("d:good", str(good), None), ("d:bad", str(bad), None)])
    assert list(hashes) == ["d:good"]
    assert failures[0][0] == "d:bad" and "unreadable image" in failures[0][1]


# --- groups without m x m pairs, the leak threshold, the reasons recorded ----------------------


def brute_groups(hashes, max_distance):
    """Reference components: every pair compared, plain union-find, label = smallest member."""
    parent = list(range(len(hashes)))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for i, j in brute_pairs_within(hashes, max_distance).tolist():
        a, b = find(i), find(j)
        parent[max(a, b)] = min(a, b)
    return np.array([find(i) for i in range(len(hashes))])


@pytest.mark.parametrize("max_distance", [1, 3, 7])
def test_bucket_heavy_groups_equal_brute_force(max_distance):
    rng = np.random.default_rng(max_distance)
    blank = np.full(1500, 0x00FF00FF00FF00FF, np.uint64)  # blank tiles: one hash many times
    frames = np.uint64(0x0F0F0F0F0F0F0F0F) ^ (np.uint64(1) << rng.integers(0, 64, 600).astype(np.uint64))
    hashes = np.concatenate([blank, frames, planted(rng, 1500, 200, max_distance + 2)])
    hashes = hashes[rng.permutation(len(hashes))]
    assert np.array_equal(duplicate_groups(hashes, max_distance), brute_groups(hashes, max_distance))


def test_fifty_thousand_equal_hashes_form_one_group_in_small_memory():
    import tracemalloc

    rng = np.random.default_rng(0)
    others = planted(rng, 2000, 100, 1)
    hashes = np.concatenate([np.full(50_000, 0xAAAA5555AAAA5555, np.uint64), others])
    tracemalloc.start()
    groups = duplicate_groups(hashes, 1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (groups[:50_000] == 0).all()
    np.testing.assert_array_equal(groups[50_000:], brute_groups(others, 1) + 50_000)
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB (m x m pairs of one bucket would be 20 GB)"
    # and through the filter: every copy but the first is a duplicate of the first
    train = {f"v:{i:05d}": 0xAAAA5555AAAA5555 for i in range(50_000)}
    rows, summary = deduplicate(train, {}, threshold=2, source_order=["v"])
    assert summary["removed"] == 49_999 and {r["collides_with"] for r in rows} == {"v:00000"}


def test_large_thresholds_search_all_pairs_and_find_the_brute_force_pairs():
    rng = np.random.default_rng(3)
    hashes = planted(rng, 1500, 300, 12)
    assert np.array_equal(pairs_within(hashes, 11), brute_pairs_within(hashes, 11))
    left, right = hashes[:700], hashes[700:]
    expected = np.argwhere(np.bitwise_count(left[:, None] ^ right[None, :]) <= 11)
    assert np.array_equal(pairs_across(left, right, 11), expected) and len(expected) > 10


def test_leak_threshold_catches_rescaled_copies_the_paper_threshold_misses():
    originals = _scene_images(20, offset=300)
    tests = {f"t:{i}": phash(im) for i, im in enumerate(originals)}
    train = {}
    for i, image in enumerate(originals):
        small = image.resize((64, 64), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=75)
        train[f"s:{i}"] = phash(Image.open(buf))
    distances = [bin(train[f"s:{i}"] ^ tests[f"t:{i}"]).count("1") for i in range(20)]
    assert max(distances) > 0, "every copy kept its exact hash: the case shows nothing"
    paper, summary_paper = deduplicate(train, {"bench": tests}, threshold=2, source_order=["s"])
    leak, summary = deduplicate(train, {"bench": tests}, threshold=2, source_order=["s"], leak_threshold=10)
    assert len(paper) == sum(d == 0 for d in distances) < 20
    assert {(r["image"], r["collides_with"]) for r in leak} == {(f"s:{i}", f"t:{i}") for i in range(20)}
    assert summary["thresholds"] == {
        "training_duplicates": {"threshold": 2, "removed": 0},
        "test_leaks": {"threshold": 10, "removed": 20, "below_duplicate_threshold": len(paper)},
    }


def test_duplicates_of_a_leaked_image_name_the_image_the_group_keeps():
    train = {"a:1.png": 7, "a:2.png": 7, "b:3.png": 7, "b:4.png": 100}
    rows, _ = deduplicate(train, {"bench": {"bench:x.png": 7}}, threshold=2, source_order=["a", "b"], leak_threshold=1)
    by_image = {r["image"]: r for r in rows}
    # all three share the test image's hash: all are leaks, nothing is "a duplicate of a removed image"
    assert {k: r["reason"] for k, r in by_image.items()} == {
        k: "test leak: bench" for k in ("a:1.png", "a:2.png", "b:3.png")
    }
    # only the group's first image is a leak (the leak threshold is stricter than the duplicates')
    train = {"a:1.png": 0b0011, "a:2.png": 0b0000, "b:3.png": 0b0000}
    rows, _ = deduplicate(
        train, {"bench": {"bench:x.png": 0b0111}}, threshold=3, source_order=["a", "b"], leak_threshold=2
    )
    by_image = {r["image"]: (r["reason"], r["collides_with"]) for r in rows}
    assert by_image == {
        "a:1.png": ("test leak: bench", "bench:x.png"),
        "b:3.png": ("training duplicate", "a:2.png"),
    }  # a:2 is kept, not the leaked a:1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"threshold": 0}, r"dedup threshold must be an integer in \[1, 64\]"),
        ({"threshold": 2, "leak_threshold": 65}, r"leak threshold must be an integer in \[1, 64\].*65"),
        ({"threshold": 2, "leak_threshold": 0}, r"leak threshold must be an integer in \[1, 64\].*got 0"),
    ],
)
def test_thresholds_outside_the_hash_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        deduplicate({"a:1": 1}, {}, source_order=["a"], **kwargs)


# --- what is protected is what is scored: the split files ----------------------------------------


def _spec(name, group, fmt, root, options=None):
    from remoteclip.config import DatasetSpec

    return DatasetSpec(
        name=name, group=group, format=fmt, root=root, options=options or {}, synthetic=None, strict=False
    )


@pytest.fixture(scope="module")
def split_files(tmp_path_factory):
    """One split file of each kind, as rule eval_split writes them (evaluate.sets.build)."""
    from remoteclip.evaluate.sets import build

    root = tmp_path_factory.mktemp("splits")
    synthesize_dataset(root / "scenes", "class_folders", 40, size=48, scenes=["airport", "beach", "forest"])
    synthesize_dataset(root / "rsicd", "karpathy", 20, size=48, splits={"train": 0.5, "test": 0.5})
    synthesize_dataset(root / "count", "count", 12, splits={"val": 1.0})
    counting = {"classes": None, "min_count": 1, "max_count": 10, "tile": 96, "square": "center"}
    specs = [
        _spec("scenes", "CLS", "class_folders", root / "scenes"),
        _spec("rsicd", "RET", "karpathy", root / "rsicd"),
        _spec("count", "COUNT", "dota", root / "count", {"splits": ["val"]}),
    ]
    return {s.name: json.loads(json.dumps(build(s, None, 0.8, counting))) for s in specs}  # as read from JSON


def test_dedup_hashes_exactly_the_test_images_and_crops_of_each_split_file(split_files):
    from remoteclip.evaluate.scored import protected_regions

    cls, ret, count = split_files["scenes"], split_files["rsicd"], split_files["count"]
    assert cls["train"] and cls["test"] and any(s["crop"] for s in count["samples"])  # something to tell apart

    def protected(split):
        return {key: (path, crop) for key, path, crop in protected_regions(split)}

    assert protected(cls) == {f"scenes:{f}": (f"{cls['root']}/{f}", None) for f, _ in cls["test"]}
    assert protected(ret) == {f"rsicd:{f}": (f"{ret['root']}/{f}", None) for f in ret["images"]}
    assert set(protected(count).values()) == {
        (f"{count['root']}/{s['image']}", tuple(s["crop"]) if s["crop"] else None) for s in count["samples"]
    }
    assert len(protected(count)) == len({(s["image"], str(s["crop"])) for s in count["samples"]})
    # the same regions the features rule embeds for the tasks to score (CLS: its test part)
    from remoteclip.evaluate.scored import scored_items

    for split in split_files.values():
        items, arrays = scored_items(split)
        test = [item for item, is_test in zip(items, arrays.get("is_test", [True] * len(items))) if is_test]
        assert {(path, tuple(crop) if crop else None) for path, crop, _ in test} == set(protected(split).values())
    # and what is hashed is that: one hash per protected region, keyed as listed
    hashes, failures = hash_items(protected_regions(count))
    assert not failures and set(hashes) == set(protected(count))


def test_a_padded_counting_sample_is_hashed_once_as_its_unpadded_crop(tmp_path):
    from remoteclip.evaluate.scored import protected_regions

    _scene_images(1)[0].resize((120, 80)).save(tmp_path / "scene.png")
    sample = {"image": "scene.png", "crop": [10, 0, 100, 80], "pad": True, "count": 2}
    split = {
        "benchmark": "count",
        "group": "COUNT",
        "root": str(tmp_path),
        "samples": [{**sample, "category": "ship"}, {**sample, "category": "plane"}],
    }
    ((key, path, crop),) = protected_regions(split)  # two classes counted in one region: one region
    assert (key, path, crop) == ("count:scene.png#10_0_100_80", f"{tmp_path}/scene.png", (10, 0, 100, 80))
    hashes, _ = hash_items(protected_regions(split))
    assert hashes[key] == phash(Image.open(path).convert("RGB").crop((10, 0, 110, 80)))


def test_hash_test_split_reads_the_split_file_eval_split_writes(tmp_path):
    from workflow_helpers import snakemake, tiny_config, write_config

    config = tiny_config(tmp_path)
    config["datasets"] = {"t_rsicd": config["datasets"]["t_rsicd"]}
    config["evaluation"] = {"benchmarks": []}  # protected, not scored: its split file is written all the same
    proc = snakemake(
        tmp_path,
        write_config(tmp_path, config),
        "-n",
        "--quiet",
        "rules",
        "--",
        "results/dedup/hashes/t_rsicd.test.tsv",
    )
    jobs = set(re.findall(r"^(\w+) +\d+$", proc.stdout + proc.stderr, re.MULTILINE)) - {"total"}  # the job table
    assert jobs == {"synthesize", "eval_split", "hash_test_split"}, proc.stdout + proc.stderr


def test_a_training_image_listed_twice_is_refused():
    from remoteclip.dedup import deduplicate_sets

    train = (["a:1.png", "a:2.png", "a:1.png"], np.array([1, 2, 3], np.uint64))
    with pytest.raises(ValueError, match="'a:1.png' is listed twice"):
        deduplicate_sets(train, {}, threshold=2, source_order=["a"])
