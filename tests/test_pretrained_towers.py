"""Tower initialisation (paper Table V, backbone ablation): the towers in
`model.pretrained_towers` keep the pretrained weights; the others are open_clip's own fresh
initialisation drawn from the seed, equal to a new model built under that seed. Run on a tiny
ViT and a tiny ModifiedResNet (the RN50 family), with a saved state dict as the pretrained
weights (no download)."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch
import yaml

from remoteclip.config import ConfigError, validate
from remoteclip.evaluate.models import load as load_eval_model
from remoteclip.evaluate.registry import resolve
from remoteclip.models import create, register_model_configs
from remoteclip.models.pretrained_towers import UnknownTower, tower_of
from train_helpers import REPO, TINY

TINY_RESNET = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module", params=[("tiny-towers-ViT", TINY), ("tiny-towers-RN", TINY_RESNET)], ids=["vit", "rn"])
def pretrained(request, tmp_path_factory):
    """(arch, a 'pretrained' state dict file drawn from seed 123, that state dict)."""
    arch, cfg = request.param
    folder = tmp_path_factory.mktemp("towers")
    (folder / f"{arch}.json").write_text(json.dumps(cfg))
    register_model_configs(folder)
    torch.manual_seed(123)
    state = open_clip.create_model(arch).state_dict()
    path = folder / "pretrained.pt"
    torch.save(state, path)
    return arch, str(path), state


def _fresh(arch: str, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return open_clip.create_model(arch).state_dict()


def _split(state: dict[str, torch.Tensor]) -> dict[str | None, dict[str, torch.Tensor]]:
    out: dict[str | None, dict[str, torch.Tensor]] = {"image": {}, "text": {}, None: {}}
    for k, v in state.items():
        out[tower_of(k)][k] = v
    return out


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _differs(a: dict, b: dict) -> bool:
    # every weight matrix differs (constant buffers such as attention masks may not)
    return all(not torch.equal(a[k], b[k]) for k in a if a[k].ndim >= 2 and a[k].numel() > 1)


@pytest.mark.parametrize("kept,fresh", [(["text"], "image"), (["image"], "text")])
def test_the_kept_tower_is_pretrained_the_other_a_seeded_fresh_init(pretrained, kept, fresh):
    arch, path, state = pretrained
    model = create(arch, path, pretrained_towers=kept, seed=5)[0]
    ours, given, reseeded = _split(model.state_dict()), _split(state), _split(_fresh(arch, 5))
    assert _equal(ours[kept[0]], given[kept[0]])
    assert _differs(ours[fresh], given[fresh])
    assert _equal(ours[fresh], reseeded[fresh])
    assert _equal(ours[None], reseeded[None])  # the temperature is back at its initial value
    assert not _equal(_split(_fresh(arch, 6))[fresh], ours[fresh])  # the seed decides


def test_both_kept_is_the_pretrained_model_and_none_kept_is_a_fresh_model(pretrained):
    arch, path, state = pretrained
    assert _equal(create(arch, path, seed=5)[0].state_dict(), state)
    assert _equal(create(arch, path, pretrained_towers=[], seed=5)[0].state_dict(), _fresh(arch, 5))


def test_the_callers_random_state_is_left_alone(pretrained):
    arch, path, _ = pretrained
    torch.manual_seed(0)
    create(arch, path, seed=5)
    expected = torch.rand(3)  # what follows building the model, as without fresh towers
    torch.manual_seed(0)
    create(arch, path, pretrained_towers=["text"], seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_an_unknown_tower_is_named(pretrained):
    arch, path, _ = pretrained
    with pytest.raises(UnknownTower, match=r"unknown tower\(s\) \['vision'\]; known: image, text"):
        create(arch, path, pretrained_towers=["vision"])


def test_the_schema_refuses_an_unknown_tower():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["runs"]["demo_all"]["model"]["pretrained_towers"] = ["vision"]
    with pytest.raises(
        ConfigError, match=r"runs.demo_all.model.pretrained_towers.0: 'vision' is not one of \['image', 'text'\]"
    ):
        validate(config)


def test_a_runs_initialisation_is_scored_with_its_fresh_tower(pretrained):
    arch, path, _ = pretrained
    model_cfg = {"arch": arch, "pretrained": path, "force_quick_gelu": False, "pretrained_towers": ["text"]}
    spec = resolve("r_init", {"run": "r", "init": True}, {"runs": {"r": {"model": model_cfg, "train": {"seed": 5}}}})
    assert spec["pretrained_towers"] == ["text"]
    model = load_eval_model(spec, "cpu")[0]
    # the evaluation builds the run's start: the file's text tower, the same fresh image tower
    expected = create(arch, path, pretrained_towers=["text"], seed=5)[0].state_dict()
    assert _equal(model.state_dict(), expected)
