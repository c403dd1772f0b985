"""Reading thousands of shards: bounded open files (training under an open-file limit below
the number of shards reads every sample, none replaced), a limit too low for the loader named
with its fix, and a shard that is missing, truncated or changed stopping the run with its name
instead of being passed off as unreadable samples."""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import subprocess
import sys

import open_clip
import pytest
from torch.utils.data import DataLoader

from remoteclip.shards import read_run_shards
from remoteclip.shards.index import ShardFileError, index_path
from remoteclip.train.data import Augment, GlobalBatchSampler, ShardDataset, ShardIndex, collate
from remoteclip.train.loop import training_shards
from train_helpers import REPO, run_training, settings, tiny_model_dir, tiny_shards

SHARDS = 64  # one sample each: more shards than the open-file limit below
LIMIT = 40  # RLIMIT_NOFILE of the training process


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("reader")
    return root, tiny_model_dir(root), tiny_shards(root, n=SHARDS, per_shard=1)


def dataset(index, open_shards=2):
    return ShardDataset(index, Augment(32), open_clip.get_tokenizer("ViT-B-32"), open_shards=open_shards)


def test_training_under_an_open_file_limit_below_the_number_of_shards_reads_every_sample(world, tmp_path):
    _, models, shards = world
    # a loader worker with at most 4 shard files open: one epoch, every sample once
    cfg = settings(steps=4, batch_size=16, workers=1, open_shards=4)
    run_training(shards, tmp_path / "run", tmp_path / "m.pt", cfg, models, open_files=LIMIT)
    summary = json.loads((tmp_path / "run/summary.json").read_text())
    assert summary["steps"] == 4 and 4 * 16 == SHARDS  # the sampler's epoch: each sample drawn once
    assert summary["replaced_samples"] == 0 and summary["skipped_shards"] == []


CHECK = "from remoteclip.train.reader import ensure_open_file_limit as f; print(f(workers={}, prefetch=2, tensors_per_batch=3, open_shards=64))"


def limited(soft: int, hard: int):
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_an_open_file_limit_too_low_for_the_workers_is_named_with_the_fix():
    """The check training runs before it builds anything (loop.check_open_files), in a process
    whose limit a cluster set: raised where the hard limit allows, else refused with the fix."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    run = lambda workers, soft, hard: subprocess.run(  # noqa: E731
        [sys.executable, "-c", CHECK.format(workers)],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=limited(soft, hard),
    )
    low = run(8, LIMIT, LIMIT)
    assert low.returncode != 0
    assert (
        f"OpenFileLimit: the open-file limit (RLIMIT_NOFILE, `ulimit -n`) is {LIMIT}, hard limit {LIMIT}" in low.stderr
    )
    assert "train.workers 8" in low.stderr and "`ulimit -n" in low.stderr and "lower train.workers" in low.stderr
    raised = run(8, LIMIT, 4096)
    assert raised.returncode == 0 and LIMIT < int(raised.stdout) <= 4096, raised.stderr


def test_the_cache_keeps_at_most_its_size_open(world):
    _, _, shards = world
    data = dataset(ShardIndex.build(sorted(shards.glob("*.tar"))), open_shards=3)
    for i in range(SHARDS):
        assert data[(0, i)].replaced == 0
        assert len(data.files) <= 3
    assert data.files.opened == SHARDS
    data[(0, SHARDS - 1)]  # the most recent one stays open
    assert data.files.opened == SHARDS


def test_a_truncated_shard_stops_the_run_unless_told_to_skip_it(world, tmp_path):
    _, _, shards = world
    copy = tmp_path / "shards"
    shutil.copytree(shards, copy)  # links become files, as a DVC checkout leaves them
    victim = sorted(copy.glob("*.tar"))[1]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])
    with pytest.raises(ShardFileError, match=rf"{victim}: \d+ bytes, its manifest says \d+.*skip_bad_shards: true"):
        training_shards(copy, skip_bad=False)
    with pytest.raises(ShardFileError, match=rf"{victim}: truncated"):  # without a manifest: its index tells
        ShardIndex.build(sorted(copy.glob("*.tar")))
    index, digests = training_shards(copy, skip_bad=True)
    assert [s for s, _ in index.skipped] == [str(victim)] and len(index) == len(digests) == SHARDS - 1


def test_a_missing_shard_stops_the_run(world, tmp_path):
    _, _, shards = world
    copy = tmp_path / "shards"
    shutil.copytree(shards, copy)
    (copy / "shard-000003.tar").unlink()
    with pytest.raises(FileNotFoundError, match=r"shards missing: .*shard-000003\.tar \(1 of 64\)"):
        training_shards(copy, skip_bad=False)


def test_a_shard_cut_short_during_training_is_fatal_and_named_not_replaced(world, tmp_path):
    _, _, shards = world
    copy = tmp_path / "shards"
    shutil.copytree(shards, copy)
    listed = read_run_shards(copy)
    data = dataset(ShardIndex.build(listed.paths, listed.sizes, listed.excluded))
    victim = copy / "shard-000000.tar"
    victim.write_bytes(victim.read_bytes()[:700])  # after the index was read: only the reads can tell
    loader = DataLoader(
        data, batch_sampler=GlobalBatchSampler(SHARDS, SHARDS, 1, 0, 0, 1), num_workers=1, collate_fn=collate
    )
    with pytest.raises(Exception, match=rf"shard {victim}: .* past the file's end"):
        next(iter(loader))


def test_a_tar_that_changed_since_it_was_indexed_is_named(world, tmp_path):
    _, _, shards = world
    copy = tmp_path / "shards"
    copy.mkdir()
    first, second = sorted(shards.glob("*.tar"))[:2]
    (copy / "shard-000000.tar").write_bytes(second.read_bytes())  # another tar under the first one's index
    shutil.copyfile(index_path(first), index_path(copy / "shard-000000.tar"))
    data = dataset(ShardIndex.build([copy / "shard-000000.tar"]))
    with pytest.raises(ShardFileError, match=r"the tar changed since its index was written; delete shard-000000"):
        data[(0, 0)]


def test_a_shard_without_an_index_is_indexed_once_with_a_warning(world, tmp_path, caplog):
    _, _, shards = world
    foreign = tmp_path / "elsewhere"
    foreign.mkdir()
    for tar in sorted(shards.glob("*.tar"))[:3]:
        (foreign / tar.name).write_bytes(tar.read_bytes())
    with caplog.at_level(logging.WARNING, logger="remoteclip.shards.index"):
        first = ShardIndex.build(sorted(foreign.glob("*.tar")))
    assert sum("has no member index" in r.getMessage() for r in caplog.records) == 3
    assert all(index_path(t).is_file() for t in foreign.glob("*.tar"))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="remoteclip.shards.index"):
        again = ShardIndex.build(sorted(foreign.glob("*.tar")))
    assert not caplog.records and (again.keys == first.keys).all() and (again.jpg == first.jpg).all()
