"""Continual pretraining: learning, DDP and accumulation equivalence, exact resume after a
kill, strict export, and bad input."""

import json
import os
import re
import signal
import subprocess
import time

import open_clip
import pytest
import torch

from remoteclip.models import UnknownArchitecture, create, register_model_configs
from remoteclip.train import distributed
from remoteclip.train.data import Augment, GlobalBatchSampler, ShardDataset, ShardIndex, ShardsMissing, collate
from train_helpers import env, run_training, settings, tiny_model_dir, tiny_shards, train_cmd


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    models = tiny_model_dir(root)
    register_model_configs(models)
    return root, models, tiny_shards(root)


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_weights(a, b, atol):
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst <= atol, f"max abs weight difference {worst}"


def test_loss_decreases_on_a_fixed_batch(world):
    root, models, shards = world
    torch.manual_seed(0)
    model, _, _ = create("tiny-test-ViT", None)
    index = ShardIndex.build(sorted(shards.glob("*.tar")))
    augment = Augment(32)
    data = ShardDataset(index, augment, open_clip.get_tokenizer("tiny-test-ViT"))
    batch = collate([data[(0, i)] for i in range(16)])
    images, texts = batch.images, batch.texts
    assert batch.replaced == 0 and images.dtype == torch.uint8 and images.shape == (16, 3, 32, 32)
    images = augment.normalize(images)
    loss_fn = open_clip.ClipLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss = loss_fn(*model(images, texts)[:3])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0] and min(losses[-5:]) < min(losses[:5]), losses


def test_sampler_partitions_global_batches():
    one = list(GlobalBatchSampler(100, 20, 1, 0, seed=3, steps=8))
    ranks = [list(GlobalBatchSampler(100, 20, 2, r, seed=3, steps=8)) for r in range(2)]
    for step in range(8):
        assert sorted(one[step]) == sorted(ranks[0][step] + ranks[1][step])
    epoch0 = [i for batch in one[:5] for _, i in batch]
    assert len(epoch0) == len(set(epoch0)) == 100  # no sample twice in an epoch
    resumed = list(GlobalBatchSampler(100, 20, 1, 0, seed=3, steps=8, start_step=3))
    assert resumed == one[3:]
    accum = list(GlobalBatchSampler(100, 20, 1, 0, seed=3, steps=8, accum=2))
    assert accum[0] + accum[1] == one[0]


# Adam divides each update by the gradient's running RMS, so coordinates whose true gradient
# is ~0 turn rounding noise (a different summation order across ranks) into full-size steps;
# a larger eps keeps those coordinates still and leaves the comparison to real gradients.
EQUIVALENCE = {"eps": 1e-4}


# Whole training runs for InfoNCE (the paper's loss); for every loss of train.loss the same two
# equivalences are checked on the loop's own step functions in tests/test_losses.py (two gloo
# ranks in one torchrun launch against one process; accumulation against the full batch)
def test_ddp_two_processes_equal_one_process_with_double_batch(world, tmp_path):
    root, models, shards = world
    cfg = settings(batch_size=16, steps=4, loss="infonce", **EQUIVALENCE)
    run_training(shards, tmp_path / "one", tmp_path / "one.pt", cfg, models, nproc=1)
    run_training(shards, tmp_path / "two", tmp_path / "two.pt", cfg, models, nproc=2)
    assert_same_weights(load(tmp_path / "one.pt"), load(tmp_path / "two.pt"), atol=1e-5)
    assert_trained(load(tmp_path / "one.pt"), models)


def test_gradient_accumulation_equals_the_full_batch(world, tmp_path):
    root, models, shards = world
    loss = "infonce"
    full, acc = settings(steps=3, loss=loss, **EQUIVALENCE), settings(steps=3, accum_steps=2, loss=loss, **EQUIVALENCE)
    run_training(shards, tmp_path / "full", tmp_path / "full.pt", full, models)
    run_training(shards, tmp_path / "acc", tmp_path / "acc.pt", acc, models)
    assert_same_weights(load(tmp_path / "full.pt"), load(tmp_path / "acc.pt"), atol=1e-5)
    assert json.loads((tmp_path / "acc/settings.json").read_text())["train"]["loss"] == loss


def assert_trained(weights, models):
    """The run moved the towers away from the seed's initialisation (a loss that gives no
    gradient would pass the equivalence trivially)."""
    register_model_configs(models)
    torch.manual_seed(0)
    init, _, _ = create("tiny-test-ViT", None)
    moved = max(float((weights[k] - v).abs().max()) for k, v in init.state_dict().items() if "visual" in k)
    assert moved > 1e-3, f"the image tower barely moved ({moved})"


def test_resume_after_kill_continues_the_same_trajectory(world, tmp_path):
    root, models, shards = world
    cfg = settings(steps=14, checkpoint_every=2)
    run_training(shards, tmp_path / "straight", tmp_path / "straight.pt", cfg, models)

    out = tmp_path / "killed"
    proc = subprocess.Popen(
        train_cmd(shards, out, tmp_path / "killed.pt", cfg),
        env=env(models),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not (out / "ckpt-00000004.pt").exists():
        assert proc.poll() is None and time.time() < deadline, "training ended before it could be killed"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed.pt").exists(), "the run finished before the kill"
    steps_done = max(int(p.stem[5:]) for p in out.glob("ckpt-*.pt"))
    assert 4 <= steps_done < 14
    run_training(shards, out, tmp_path / "killed.pt", cfg, models)
    assert_same_weights(load(tmp_path / "straight.pt"), load(tmp_path / "killed.pt"), atol=1e-6)
    rows = (out / "log.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 15))


def test_export_loads_strictly_and_embeds_like_the_training_model(world, tmp_path):
    root, models, shards = world
    run_training(shards, tmp_path / "run", tmp_path / "model.pt", settings(steps=2, checkpoint_every=2), models)
    fresh, _, preprocess = open_clip.create_model_and_transforms("tiny-test-ViT")
    fresh.load_state_dict(load(tmp_path / "model.pt"), strict=True)
    trained, _, _ = open_clip.create_model_and_transforms("tiny-test-ViT")
    # resume checkpoints hold only what weights_only loading admits
    trained.load_state_dict(torch.load(tmp_path / "run/ckpt-00000002.pt", weights_only=True)["model"])
    fresh.eval(), trained.eval()
    images = torch.randn(3, 3, 32, 32)
    texts = open_clip.get_tokenizer("tiny-test-ViT")(["a harbor", "a forest", "many planes"])
    with torch.no_grad():
        assert torch.equal(fresh.encode_image(images), trained.encode_image(images))
        assert torch.equal(fresh.encode_text(texts), trained.encode_text(texts))
    assert (tmp_path / "model.json").is_file()  # the custom architecture travels with the weights


def test_missing_shards(tmp_path):
    with pytest.raises(ShardsMissing, match="no shards"):
        ShardIndex.build([])
    with pytest.raises(ShardsMissing, match="shards missing"):
        ShardIndex.build([tmp_path / "shard-000000.tar"])


def test_unknown_architecture_lists_close_names():
    with pytest.raises(UnknownArchitecture, match="'ViT-B-23'.*close names: .*ViT-B-32"):
        create("ViT-B-23", None)


def test_missing_checkpoint_file(world):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create("tiny-test-ViT", "/nonexistent/model.pt")


def test_recipe_change_does_not_resume_foreign_checkpoints(world, tmp_path):
    root, models, shards = world
    run_training(shards, tmp_path / "run", None, settings(steps=2), models)
    run_training(shards, tmp_path / "run", tmp_path / "m.pt", settings(steps=2, lr=1e-4), models)
    assert list((tmp_path / "run").glob("stale-*/ckpt-00000002.pt"))


def per_rank(log: str, pattern: str) -> dict[int, int]:
    """{rank: number} from the line each rank logs, `pattern` with groups (rank, number)."""
    found = [tuple(map(int, m)) for m in re.findall(pattern, log)]
    ranks = dict(found)
    assert len(ranks) == len(found), f"a rank logged {pattern!r} twice: {found}"
    return ranks


def start_steps(proc) -> dict[int, int]:
    return per_rank(proc.stderr, r"rank (\d+) of \d+ starts at step (\d+)")


def test_two_ranks_set_a_foreign_recipe_aside_once_and_resume_the_same_checkpoint(world, tmp_path):
    root, models, shards = world
    out = tmp_path / "run"
    first = run_training(shards, out, None, settings(steps=4, checkpoint_every=2), models, nproc=2, stop_after=2)
    recipe = json.loads((out / "settings.json").read_text())["fingerprint"]

    # another lr is another recipe: its checkpoint is set aside by one rank (ranks moving the
    # same files collide) and both ranks start afresh
    changed = settings(steps=4, checkpoint_every=2, lr=1e-4)
    restart = run_training(shards, out, None, changed, models, nproc=2, stop_after=2)
    assert restart.stderr.count("belong to another recipe") == 1, restart.stderr[-3000:]
    (stale,) = out.glob("stale-*")
    assert stale.name == f"stale-{recipe}" and [p.name for p in stale.iterdir()] == ["ckpt-00000002.pt"]
    assert start_steps(first) == start_steps(restart) == {0: 0, 1: 0}

    resumed = run_training(shards, out, None, changed, models, nproc=2)  # the same recipe: both continue
    assert start_steps(resumed) == {0: 2, 1: 2}
    assert [int(r.split(",")[0]) for r in (out / "log.csv").read_text().splitlines()[1:]] == [1, 2, 3, 4]
    assert list(out.glob("stale-*")) == [stale] and [p.name for p in stale.iterdir()] == ["ckpt-00000002.pt"]


def test_threads_per_rank_share_the_node_cpus():
    assert distributed.threads_per_rank(32, 4) == 8
    assert distributed.threads_per_rank(7, 2) == 3
    assert distributed.threads_per_rank(3, 4) == 1  # never fewer than one
    assert distributed.threads_per_rank(8, 1) == 8
    assert distributed.threads_per_rank(8, 0) == distributed.threads_per_rank(8, None) == 8
    assert distributed.threads_per_rank(None, 4) is None and distributed.threads_per_rank(0, 4) is None


def test_slurm_tasks_on_this_node():
    assert distributed.tasks_on_node("4", 0) == 4
    assert distributed.tasks_on_node("2(x3),1", 0) == distributed.tasks_on_node("2(x3),1", 2) == 2
    assert distributed.tasks_on_node("2(x3),1", 3) == 1


@pytest.mark.parametrize("counts", ["", "2(x)", "two", "2(x3)1"])
def test_malformed_slurm_task_counts_are_named(counts):
    with pytest.raises(ValueError, match="SLURM_TASKS_PER_NODE"):
        distributed.tasks_on_node(counts, 0)


def test_each_rank_sets_its_share_of_the_cpus(world, tmp_path):
    root, models, shards = world
    proc = run_training(shards, tmp_path / "run", None, settings(steps=1), models, nproc=2, threads=5)
    assert per_rank(proc.stderr, r"rank (\d+): (\d+) torch threads") == {0: 2, 1: 2}  # 5 CPUs, 2 ranks
    assert json.loads((tmp_path / "run/settings.json").read_text())["threads_per_rank"] == 2
