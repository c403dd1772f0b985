"""The hashing stage streams and resumes: a killed job run again writes the bytes an
uninterrupted run writes, hashing only what its cache lacks; a changed image or changed hash
settings are hashed again; memory does not grow with the rows."""

import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from remoteclip.dedup import caption_items, hash_items, hash_source, read_hashes
from remoteclip.errors import FormatError

CAPTION = "caption {}:" + " a scene with many small objects seen from above," * 10  # ~500 characters


def write_images(folder, n, seed=0, size=24):
    """n distinct noise images, tile-able: (path of each)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i:04d}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def write_captions(path, images, tiles_of=()):
    """A caption file: one row per image, plus four 12 px tiles of each image in `tiles_of`
    (consecutive rows of one file, as M2B writes them)."""
    with open(path, "w") as fh:
        for image in images:
            row = {"image": image, "captions": [CAPTION.format(k) for k in range(5)], "source": "src"}
            fh.write(json.dumps(row) + "\n")
            if image in tiles_of:
                for x in (0, 12):
                    for y in (0, 12):
                        fh.write(json.dumps({**row, "crop": [x, y, 12, 12]}) + "\n")
    return path


@pytest.fixture
def source(tmp_path):
    images = write_images(tmp_path / "images", 300)
    return write_captions(tmp_path / "captions.jsonl", images, tiles_of=images[:5]), images


def test_streamed_hashes_equal_in_memory_hashing_in_input_order(tmp_path, source):
    captions, images = source
    broken = tmp_path / "images" / "0007.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    os.remove(images[9])
    counts = hash_source(caption_items(captions), tmp_path / "h.tsv", tmp_path / "cache.tsv", workers=2, batch=16)
    items = list(caption_items(captions))
    expected, failures = hash_items(items)
    keys, values, failed = read_hashes(tmp_path / "h.tsv")
    assert dict(zip(keys, values.tolist())) == expected
    assert dict(failed) == dict(failures) and {k for k, _ in failed} == {f"src:{broken}", f"src:{images[9]}"}
    rows = [line.split("\t")[0] for line in (tmp_path / "h.tsv").read_text().splitlines()[1:]]
    assert rows == [item[0] for item in items]  # one row per caption row, in its order
    assert counts == {"rows": 320, "hashed": 320, "cached": 0, "failed": 2}


DRIVER = """
import sys, time
from remoteclip.dedup import caption_items, hash_source

def slowly(items):  # storage that delivers a row every 10 ms: the kill lands mid-stage
    for item in items:
        time.sleep(0.01)
        yield item

hash_source(slowly(caption_items(sys.argv[1])), sys.argv[2], sys.argv[3], workers=2, batch=8)
"""


def records(cache):
    return cache.read_text().count("\n") - 1 if cache.is_file() else 0


def test_killed_stage_rerun_hashes_only_the_rest_and_writes_the_same_bytes(tmp_path, source):
    captions, _ = source
    clean = tmp_path / "clean.tsv"
    hash_source(caption_items(captions), clean, tmp_path / "clean-cache.tsv")

    out, cache = tmp_path / "out" / "h.tsv", tmp_path / "cache" / "c.tsv"
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(captions), str(out), str(cache)], start_new_session=True)
    deadline = time.monotonic() + 60
    while records(cache) < 60 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the stage and its worker processes, as a job scheduler would
    assert proc.wait() == -signal.SIGKILL, "the stage ended before it could be killed"
    done = records(cache)
    assert 60 <= done < 320 and not out.exists()
    with open(cache, "a") as fh:
        fh.write("src:/a/record/torn\t4")  # as a kill in the middle of a write leaves it

    counts = hash_source(caption_items(captions), out, cache, workers=2)
    assert out.read_bytes() == clean.read_bytes()
    assert counts["cached"] == done and counts["hashed"] == 320 - done
    assert "torn" not in cache.read_text() and records(cache) == 320  # the cache is this run's rows
    assert not list(out.parent.glob("*.part")) and not list(cache.parent.glob("*.next"))


def test_a_changed_image_or_changed_settings_are_hashed_again(tmp_path, source):
    captions, images = source
    out, cache = tmp_path / "h.tsv", tmp_path / "cache.tsv"
    hash_source(caption_items(captions), out, cache)
    changed = images[20]
    Image.open(images[21]).save(changed)  # another picture under the same name
    counts = hash_source(caption_items(captions), out, cache)
    assert counts["hashed"] == 1 and counts["cached"] == 319
    keys, values, _ = read_hashes(out)
    assert dict(zip(keys, values.tolist()))[f"src:{changed}"] == hash_items([("k", changed, None)])[0]["k"]
    # other hash settings: every image again, as a run with an empty cache writes it
    counts = hash_source(caption_items(captions), out, cache, hash_size=4)
    assert counts["hashed"] == 320
    hash_source(caption_items(captions), tmp_path / "fresh.tsv", tmp_path / "fresh-cache.tsv", hash_size=4)
    assert out.read_bytes() == (tmp_path / "fresh.tsv").read_bytes()


def test_a_broken_image_is_not_retried_until_it_changes(tmp_path, source):
    captions, images = source
    out, cache = tmp_path / "h.tsv", tmp_path / "cache.tsv"
    good = Image.open(images[30])
    with open(images[30], "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\ntruncated")
    assert hash_source(caption_items(captions), out, cache)["failed"] == 1
    counts = hash_source(caption_items(captions), out, cache)
    assert counts["hashed"] == 0 and counts["failed"] == 1
    good.save(images[30])
    counts = hash_source(caption_items(captions), out, cache)
    assert counts["hashed"] == 1 and counts["failed"] == 0


@pytest.mark.timeout(120)  # the error is read in the worker pool's thread: it must not leave the pool waiting
def test_malformed_caption_row_and_unstorable_key_are_refused(tmp_path, source):
    captions, images = source
    with open(captions, "a") as fh:
        fh.write('{"image": "x.png", "source": \n')
    for workers in (1, 2):
        with pytest.raises(FormatError, match=r"captions.jsonl:321: malformed caption row"):
            hash_source(caption_items(captions), tmp_path / "h.tsv", tmp_path / "cache.tsv", workers=workers)
        assert not (tmp_path / "h.tsv").exists()
    with pytest.raises(ValueError, match="holds a tab"):
        hash_source([("src:a\tb.png", images[0], None)], tmp_path / "h.tsv", tmp_path / "cache.tsv")


def test_memory_does_not_grow_with_the_rows(tmp_path):
    """4,000 caption rows of ~2.6 KB (10 MB if held), all tiles of one scene, hashed in under 1 MB:
    rows stream, and a scene with more tiles than a batch is cut into batches too."""
    (image,) = write_images(tmp_path / "images", 1, size=64)
    captions = tmp_path / "captions.jsonl"
    with open(captions, "w") as fh:
        for i in range(4000):
            row = {"image": image, "captions": [CAPTION.format(k) for k in range(5)], "source": "s"}
            fh.write(json.dumps({**row, "crop": [i % 40, i // 40 % 40, 8 + i // 1600, 8]}) + "\n")
    assert captions.stat().st_size > 4000 * 2500
    hash_source(caption_items(captions), tmp_path / "warm.tsv", tmp_path / "warm.cache")  # imports done
    # 2 workers: the process pool reads the row stream in a thread of its own, which must not
    # run ahead of the workers (traced here: the thread is in this process)
    for workers in (1, 2):
        tracemalloc.start()
        counts = hash_source(
            caption_items(captions), tmp_path / f"h{workers}.tsv", tmp_path / f"c{workers}.tsv", workers=workers
        )
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert counts["rows"] == 4000
        assert peak < 2**20, f"{workers} worker(s): peak {peak / 2**20:.1f} MiB"
