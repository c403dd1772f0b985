"""Per-source sampling weights (runs.<run>.weights): what an epoch draws from each source, the
unweighted trajectory kept when every weight is 1, and the same global batches for any number
of ranks, accumulation steps and loader workers."""

import json
from collections import Counter

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from conftest import REPO, SCHEMA
from remoteclip.config import ConfigError, resolve_catalogue, validate
from remoteclip.train.data import GlobalBatchSampler
from remoteclip.train.mixing import Mixing
from train_helpers import run_training, settings, tiny_model_dir

# three sources over five shards, in the manifest's order: 30 + 20 + 11 samples
SHARD_SOURCES = ["rsicd", "rsicd", "web", "web", "dota"]
SHARD_SIZES = [20, 10, 12, 8, 11]
SAMPLE_SHARD = np.repeat(np.arange(len(SHARD_SIZES)), SHARD_SIZES)
N = len(SAMPLE_SHARD)


def mixing(**weights):
    return Mixing.of(SHARD_SOURCES, SAMPLE_SHARD, weights)


def source_of(i):
    return SHARD_SOURCES[SAMPLE_SHARD[i]]


def epoch_draws(mix, seed, epoch):
    return Counter(mix.epoch_items(seed, epoch).tolist())


def test_weights_one_keep_the_unweighted_trajectory_draw_for_draw():
    plain = list(GlobalBatchSampler(N, 12, 1, 0, seed=5, steps=11))
    ones = list(GlobalBatchSampler(N, 12, 1, 0, seed=5, steps=11, mix=mixing(rsicd=1, web=1.0)))
    assert ones == plain and len({e for batch in plain for e, _ in batch}) == 3  # three epochs compared


def test_an_epoch_draws_weight_times_size_of_each_source():
    mix = mixing(rsicd=2, web=0.5, dota=1.5)
    draws = epoch_draws(mix, seed=0, epoch=0)
    per_source = Counter()
    for i, times in draws.items():
        per_source[source_of(i)] += times
    assert per_source == {"rsicd": 60, "web": 10, "dota": 17}  # 1.5 x 11 = 16.5, the half rounded up
    assert all(draws[i] == 2 for i in range(N) if source_of(i) == "rsicd")  # repeated, none left out
    assert {draws[i] for i in range(N) if source_of(i) == "web"} == {0, 1}  # subsampled, none twice
    assert {draws[i] for i in range(N) if source_of(i) == "dota"} == {1, 2}
    assert mix.epoch_size() == 87 and sum(s["share"] for s in mix.summary().values()) == pytest.approx(1)


def test_the_fractional_draws_follow_the_seed_and_the_epoch():
    mix = mixing(web=0.5)
    web = [i for i in range(N) if source_of(i) == "web"]
    chosen = lambda seed, epoch: sorted(i for i in web if epoch_draws(mix, seed, epoch)[i])  # noqa: E731
    assert chosen(0, 0) == chosen(0, 0)
    assert chosen(0, 0) != chosen(0, 1) and chosen(0, 0) != chosen(1, 0)


def test_a_weighted_epoch_is_the_same_global_batches_for_any_world_and_accumulation():
    mix = mixing(rsicd=0.5, web=3)
    steps = 2 * mix.epoch_size() // 12 + 1  # into the third epoch
    one = list(GlobalBatchSampler(N, 12, 1, 0, seed=2, steps=steps, mix=mix))
    ranks = [list(GlobalBatchSampler(N, 12, 3, r, seed=2, steps=steps, mix=mix, accum=2)) for r in range(3)]
    for step in range(steps):
        pieces = [b for r in range(3) for b in ranks[r][2 * step : 2 * step + 2]]
        assert sorted(one[step]) == sorted(item for piece in pieces for item in piece)
    resumed = list(GlobalBatchSampler(N, 12, 1, 0, seed=2, steps=steps, mix=mix, start_step=5))
    assert resumed == one[5:]
    epoch0 = Counter(i for batch in one[: mix.epoch_size() // 12] for _, i in batch)
    assert max(epoch0.values()) == 3 and all(e == 0 for batch in one[: mix.epoch_size() // 12] for e, _ in batch)


class Items(Dataset):
    """What the loader hands over is the sampler's item itself."""

    def __len__(self):
        return N

    def __getitem__(self, item):
        return item


def test_loader_workers_do_not_change_the_weighted_batches():
    mix = mixing(dota=2.5, web=0.25)
    batches = {}
    for workers in (0, 2):
        sampler = GlobalBatchSampler(N, 8, 1, 0, seed=1, steps=12, mix=mix)
        loader = DataLoader(Items(), batch_sampler=sampler, num_workers=workers, collate_fn=list)
        batches[workers] = list(loader)
    assert batches[0] == batches[2] == list(GlobalBatchSampler(N, 8, 1, 0, seed=1, steps=12, mix=mix))


def test_a_weight_for_a_source_the_shards_do_not_hold_is_named():
    with pytest.raises(ValueError, match=r"weights for rs5m, .*sources: rsicd, web, dota"):
        mixing(rs5m=2)
    with pytest.raises(ValueError, match="positive"):
        mixing(web=0)


def test_a_batch_larger_than_the_weighted_epoch_is_refused():
    with pytest.raises(ValueError, match=r"larger than the 19 samples an epoch draws"):
        GlobalBatchSampler(N, 24, 1, 0, seed=0, steps=1, mix=mixing(rsicd=0.1, web=0.5, dota=0.5))


# ---- runs.<run>.weights in the config


def demo_config(**weights):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["runs"]["demo_all"]["weights"] = weights
    return config


def test_weights_of_a_run_name_its_sources():
    validate(demo_config(demo_rsicd=2, demo_dota=0.5), SCHEMA)  # @RET and @DET members
    with pytest.raises(ConfigError) as err:
        validate(demo_config(demo_scenes=2, demo_rsicd_=1, demo_dior=0), SCHEMA)
    text = str(err.value)
    assert "runs.demo_all.weights.demo_scenes: 'demo_scenes' is not a source of run 'demo_all'" in text
    assert (
        "runs.demo_all.weights.demo_rsicd_: 'demo_rsicd_' is not a configured dataset (did you mean 'demo_rsicd'?)"
        in text
    )
    assert "runs.demo_all.weights.demo_dior: 0 is less than or equal to the minimum of 0" in text


def test_weights_of_catalogue_sources_are_checked_once_their_group_is_known():
    config = {
        "datasets": {"DOTA": {"catalogue": "DOTA"}, "RSICD": {"catalogue": "RSICD"}},
        "runs": {"r": {"sources": ["@DET"], "weights": {"DOTA": 2, "RSICD": 3}}},
    }
    validate(config, SCHEMA)  # their groups are not known yet
    with pytest.raises(ConfigError, match="runs.r.weights.RSICD: 'RSICD' is not a source of run 'r'"):
        resolve_catalogue(config, REPO)


# ---- a weighted run end to end: its log, settings and the exported model's metadata


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory):
    """Tiny shards of two sources, 48 + 24 images: "own" synthetic, "web" non-commercial."""
    from remoteclip.licences import SYNTHETIC
    from remoteclip.shards import ShardSettings
    from remoteclip.shards.build import build_shards
    from remoteclip.synthetic.scenes import SCENES, render_scene

    root = tmp_path_factory.mktemp("mixing")
    kinds, rows = list(SCENES), []
    for i in range(72):
        path = root / "img" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(render_scene(np.random.default_rng(i), kinds[i % len(kinds)], 48).image).save(path)
        captions = [f"a photo of {kinds[i % len(kinds)]} number {k}" for k in range(5)]
        rows.append({"image": str(path), "source": "own" if i < 48 else "web", "captions": captions})
    web = {"licence": "CC-BY-NC-4.0", "terms": {"commercial": False, "derivatives": True}}
    manifest = build_shards(
        rows,
        root / "shards",
        ShardSettings(max_side=32, samples_per_shard=20),
        "mixed",
        (),
        {"own": SYNTHETIC, "web": web},
    )
    return root, tiny_model_dir(root), manifest


def test_the_manifest_lists_every_source_with_its_licence_and_flags_non_commercial_ones(two_sources):
    _, _, manifest = two_sources
    assert manifest["sources"]["web"] == {
        "samples": 24,
        "licence": "CC-BY-NC-4.0",
        "terms": {"commercial": False, "derivatives": True},
    }
    assert manifest["sources"]["own"]["terms"] == {"commercial": True, "derivatives": True}
    assert manifest["licence_note"] == "non-commercial sources: web (commercial: false, derivatives: true)"


def test_a_weighted_run_logs_and_exports_its_sources_weights_and_licences(two_sources, tmp_path):
    root, models, _ = two_sources
    cfg = {**settings(steps=2, batch_size=16), "weights": {"web": 2}}
    proc = run_training(root / "shards", tmp_path / "run", tmp_path / "mixed.pt", cfg, models)
    assert "source own: 48 samples, weight 1, 48 draws per epoch (50.0 % of an epoch)" in proc.stderr
    assert "source web: 24 samples, weight 2, 48 draws per epoch (50.0 % of an epoch)" in proc.stderr
    assert "WARNING remoteclip.train.loop: non-commercial sources: web (commercial: false" in proc.stderr
    meta = json.loads((tmp_path / "mixed.sources.json").read_text())
    assert meta["run"] == "mixed" and meta["licence_note"].startswith("non-commercial sources: web")
    assert meta["sources"]["web"] == {
        "samples": 24,
        "weight": 2.0,
        "per_epoch": 48,
        "share": 0.5,
        "licence": "CC-BY-NC-4.0",
        "terms": {"commercial": False, "derivatives": True},
    }
    state = torch.load(tmp_path / "mixed.pt", map_location="cpu", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())  # still a plain state dict
    used = json.loads((tmp_path / "run/settings.json").read_text())
    assert used["sources"]["own"]["share"] == 0.5 and used["steps"] == 2


def test_weights_for_a_source_the_shards_lack_stop_the_run_naming_it(two_sources, tmp_path):
    from remoteclip.shards.manifest import read_run_shards
    from remoteclip.train.loop import source_mixing, training_shards

    shards = two_sources[0] / "shards"
    listed = read_run_shards(shards)
    index, _ = training_shards(shards, False, listed)
    with pytest.raises(ValueError, match=r"weights for rs5m, which the run's shards do not hold \(sources: own, web\)"):
        source_mixing(index, listed, {"rs5m": 2})
    bare = tmp_path / "bare"  # shards copied without their manifest: nothing names their sources
    bare.mkdir()
    for path in shards.glob("shard-*"):
        (bare / path.name).write_bytes(path.read_bytes())
    listed = read_run_shards(bare)
    index, _ = training_shards(bare, False, listed)
    assert source_mixing(index, listed, {}) is None
    with pytest.raises(ValueError, match="need the run's manifest.json"):
        source_mixing(index, listed, {"web": 2})


def test_weights_other_than_one_make_another_recipe_whose_checkpoints_are_not_resumed():
    from remoteclip.train.settings import fingerprint, from_config

    model, train = from_config({"arch": "tiny-test-ViT", "pretrained": None}, {"steps": 2})
    plain = fingerprint(model, train, ["digest"])
    assert fingerprint(model, train, ["digest"], None) == plain  # unweighted runs keep their checkpoints
    assert fingerprint(model, train, ["digest"], {"own": 1.0, "web": 2.0}) != plain
