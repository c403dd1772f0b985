"""Checkpoints are read with weights_only=True: every release layout loads, a pickle that would
run code is refused with a message that names it, and trusting a file is asked for by name."""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np
import pytest
import torch

from remoteclip.weights.files import CheckpointError, load_file, read_state_dict

TINY = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


class Touch:
    """Unpickling this object creates a file: a stand-in for code a malicious checkpoint runs."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


@pytest.fixture
def tiny(tmp_path):
    """A tiny architecture beside its weights (as exports travel) and its state dict."""
    import open_clip

    (tmp_path / "weights-test-ViT.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(tmp_path / "weights-test-ViT.json")
    torch.manual_seed(1)
    model = open_clip.create_model("weights-test-ViT")
    return tmp_path, {k: v.clone() for k, v in model.state_dict().items()}


def spec_for(path, **extra):
    return {
        "name": "m",
        "arch": "weights-test-ViT",
        "pretrained": None,
        "checkpoint": str(path),
        "quick_gelu": False,
        "seed": 0,
        **extra,
    }


def equal_states(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_every_release_layout_loads_with_weights_only(tiny):
    from safetensors.torch import save_file

    root, state = tiny
    layouts = {
        "plain.pt": state,  # released RemoteCLIP-*.pt, our exports
        "open_clip_train.pt": {
            "epoch": 3,
            "name": "run",
            "state_dict": {f"module.{k}": v for k, v in state.items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
        },
        "itra.pt": {
            "epoch": 10,
            "name": "itra",
            "state_dict": state,
            "optimizer": {"state": {}, "param_groups": []},
            "scaler": {"scale": 65536.0, "growth_factor": 2.0},
        },
    }
    for name, obj in layouts.items():
        torch.save(obj, root / name)
        assert equal_states(read_state_dict(root / name), state), name
    save_file(state, root / "weights.safetensors")
    assert equal_states(read_state_dict(root / "weights.safetensors"), state)


def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tiny):
    from remoteclip.evaluate.models import load

    root, state = tiny
    marker = root / "code-ran"
    torch.save({"state_dict": state, "hook": Touch(marker)}, root / "evil.pt")
    with pytest.raises(
        CheckpointError,
        match=r"evil.pt: refused.*pathlib.*run arbitrary code.*"
        r"trust_checkpoint: true",
    ):
        load(spec_for(root / "evil.pt"))
    assert not marker.exists()
    # asked for by name, the file is read as torch.load(weights_only=False) reads it
    model, _, _ = load(spec_for(root / "evil.pt", trust_checkpoint=True))
    assert marker.exists()
    assert equal_states({k: v for k, v in model.state_dict().items()}, state)


def test_extra_pickled_objects_are_named_in_the_error(tiny):
    root, state = tiny
    torch.save({"state_dict": state, "args": argparse.Namespace(lr=0.1)}, root / "with_args.pt")
    with pytest.raises(CheckpointError, match=r"with_args.pt: refused.*argparse.Namespace"):
        read_state_dict(root / "with_args.pt")


def test_training_init_from_a_path_is_read_safely(tiny):
    from remoteclip.models import create

    root, state = tiny
    torch.save({"state_dict": state, "hook": Touch(root / "ran")}, root / "init.pt")
    with pytest.raises(CheckpointError, match="refused"):
        create("weights-test-ViT", str(root / "init.pt"))
    torch.save(state, root / "init_plain.pt")
    model, _, _ = create("weights-test-ViT", str(root / "init_plain.pt"))
    assert equal_states(model.state_dict(), state)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "not a readable torch checkpoint"),  # truncated
        ({"epoch": 1}, "holds no state dict"),
        ({"state_dict": {"a": torch.ones(1), "b": 3}}, "1 entries are not tensors"),
    ],
)
def test_bad_checkpoints_name_the_file_and_the_problem(tiny, content, message):
    root, state = tiny
    path = root / "bad.pt"
    if content is None:
        torch.save(state, path)
        path.write_bytes(path.read_bytes()[:200])
    else:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=rf"{path}.*{message}"):
        read_state_dict(path)


def test_resume_checkpoints_round_trip_under_weights_only(tmp_path):
    from remoteclip.train import checkpoints

    np.random.seed(5)
    torch.manual_seed(5)
    state = checkpoints.rng_state()
    expected = (np.random.rand(3), torch.rand(3))
    path = checkpoints.save(tmp_path, 7, {"step": 7, "fingerprint": "f", "rng": state}, keep=2)
    torch.load(path, weights_only=True)  # nothing beyond tensors and containers
    checkpoints.set_rng_state(checkpoints.newest(tmp_path, "f")["rng"])
    assert np.array_equal(np.random.rand(3), expected[0]) and torch.equal(torch.rand(3), expected[1])


def test_resume_checkpoint_with_numpy_state_of_the_previous_layout_still_loads(tmp_path):
    from remoteclip.train import checkpoints

    np.random.seed(3)
    legacy = {"step": 2, "fingerprint": "f", "rng": {"numpy": np.random.get_state()}}
    torch.save(legacy, tmp_path / "ckpt-00000002.pt")
    assert checkpoints.newest(tmp_path, "f")["step"] == 2


def test_a_resume_checkpoint_that_would_run_code_is_refused(tmp_path):
    from remoteclip.train import checkpoints

    torch.save({"step": 1, "fingerprint": "f", "x": Touch(tmp_path / "ran")}, tmp_path / "ckpt-00000001.pt")
    with pytest.raises(CheckpointError, match="resume checkpoint .*ckpt-00000001.pt: refused"):
        checkpoints.newest(tmp_path, "f")
    assert not (tmp_path / "ran").exists()


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt not found"):
        load_file(tmp_path / "nope.pt")
