"""B2C in chunks that survive the process: a job killed with SIGKILL redoes at most the chunk
it was in, and its rerun writes the bytes of an uninterrupted run; chunks of other inputs or
settings are never reused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO
from remoteclip.annotations import RecordSpool
from remoteclip.b2c import B2CSettings, load_templates
from remoteclip.config import dataset_spec
from remoteclip.convert import b2c_dataset
from remoteclip.formats.base import Box, ImageRecord

TEMPLATES = REPO / "config" / "b2c_templates.yaml"
IMAGES, CHUNK = 10, 3  # four chunks: 3 + 3 + 3 + 1 images

# the stage in a process of its own (the dataset root is only written into the lines), killed (SIGKILL, no clean-up of any kind) when it starts
# captioning image `kill_at` (1-based; 0: never)
RUN = textwrap.dedent(
    """
    import logging, os, signal, sys
    from remoteclip import convert
    from remoteclip.b2c import B2CSettings, load_templates
    from remoteclip.config import dataset_spec

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    folder, templates, kill_at, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    real, calls = convert.captions_for, [0]

    def captions_for(*args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    convert.captions_for = captions_for
    spec = dataset_spec("d", {"group": "DET", "format": "dota", "root": "/data/raw/d"})
    settings = B2CSettings(templates=load_templates(templates))
    convert.b2c_dataset(
        spec, folder + "/a.json", folder + "/a.report.json", settings,
        folder + "/out/d.jsonl", folder + "/out/d.report.json", chunk_images=chunk,
    )
    """
)


def inputs(folder: Path, images: int = IMAGES) -> Path:
    """A parse stage's two outputs: the COCO file and its report."""
    folder.mkdir(parents=True, exist_ok=True)
    spool = RecordSpool(folder / ".a.records")
    for i in range(images):
        boxes = [Box(5 + i, 5, 8, 8, "plane")] * (1 + i % 3) + [Box(40, 30, 6, 6, "ship")] * (i % 2)
        spool.add(ImageRecord(f"images/{i:03d}.png", 64, 64, boxes if i != 4 else []))
    spool.write_coco(folder / "a.json", "d")
    spool.remove()
    report = {"boxes": spool.boxes, "skipped": {"total": 0, "by_reason": {}}}
    (folder / "a.report.json").write_text(json.dumps(report))
    return folder


def run(folder: Path, kill_at: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TQDM_DISABLE": "1"}
    cmd = [sys.executable, "-c", RUN, str(folder), str(TEMPLATES), str(kill_at), str(CHUNK)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def outputs(folder: Path) -> tuple[bytes, bytes]:
    return (folder / "out" / "d.jsonl").read_bytes(), (folder / "out" / "d.report.json").read_bytes()


@pytest.mark.parametrize("kill_at, reused", [(8, 2), (1, 0)], ids=["in the third chunk", "at the first image"])
def test_a_killed_b2c_redoes_only_its_chunk_and_writes_the_same_bytes(tmp_path, kill_at, reused):
    whole = inputs(tmp_path / "whole")
    assert run(whole).returncode == 0
    killed = inputs(tmp_path / "killed")
    proc = run(killed, kill_at)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "out" / "d.jsonl").exists()
    done = sorted(p.name for p in (killed / "out" / ".d.jsonl.parts").glob("*.json"))
    assert done == [f"{i:06d}.json" for i in range(reused)]

    proc = run(killed)
    assert proc.returncode == 0, proc.stderr
    chunks = -(-IMAGES // CHUNK)
    assert f"{reused} chunks reused from an interrupted run, {chunks - reused} written" in proc.stderr
    assert outputs(killed) == outputs(whole)
    assert not (killed / "out" / ".d.jsonl.parts").exists()


def test_chunks_of_another_input_are_discarded_not_reused(tmp_path):
    folder = inputs(tmp_path / "x")
    assert run(folder, kill_at=8).returncode == -signal.SIGKILL
    inputs(folder, images=IMAGES + 2)  # the parse stage ran again and found two more images
    spec = dataset_spec("d", {"group": "DET", "format": "dota", "root": "/data/raw/d"})
    settings = B2CSettings(templates=load_templates(TEMPLATES))
    report = b2c_dataset(
        spec,
        folder / "a.json",
        folder / "a.report.json",
        settings,
        folder / "out" / "d.jsonl",
        folder / "out" / "d.report.json",
        chunk_images=CHUNK,
    )
    fresh = inputs(tmp_path / "fresh", images=IMAGES + 2)
    assert run(fresh).returncode == 0
    assert outputs(folder) == outputs(fresh)
    assert report["images"] == IMAGES + 2 and report["skipped"]["no boxes (B2C needs at least one)"] == 1
