"""Preprocessing (paper Table V): the default augmentation is unchanged by the new options;
SimCLR's colour distortion and blur (Chen et al. 2020) at its probabilities, drawn from the
sample's generator; super-resolution before the shards through a user's TorchScript model,
refused with a clear message when none is configured."""

from __future__ import annotations

import io
import random
import tarfile

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from remoteclip.shards import ShardSettings
from remoteclip.shards.build import build_shards
from remoteclip.super_resolution import SuperResolutionError
from remoteclip.synthetic.scenes import SCENES, render_scene
from remoteclip.train.data import SIMCLR_JITTER, SIMCLR_P, Augment, simclr_colour


def _image(seed: int = 0, size: int = 48) -> torch.Tensor:
    kind = list(SCENES)[seed % len(SCENES)]
    return torch.from_numpy(render_scene(np.random.default_rng(seed), kind, size).image).permute(2, 0, 1).contiguous()


def test_the_default_augmentation_is_crop_flip_rotation_with_the_same_draws():
    """Today's behaviour, step by step with torchvision, from the same generator: the new
    options add no draw, so the demo's samples (and numbers) are those of before."""
    augment = Augment(size=32)
    assert augment.rot90 and not augment.simclr
    for seed in range(20):
        image = _image(seed)
        rng, ref_rng = random.Random(seed), random.Random(seed)
        got = augment(image, rng)
        top, left, h, w = augment.crop_box(ref_rng, image.shape[2], image.shape[1])
        want = TF.resized_crop(image, top, left, h, w, [32, 32], interpolation=TF.InterpolationMode.BICUBIC)
        if ref_rng.random() < 0.5:
            want = want.flip(-1)
        want = torch.rot90(want, ref_rng.randrange(4), dims=(1, 2))
        assert torch.equal(got, want)
        assert rng.getstate() == ref_rng.getstate()


def test_simclr_is_deterministic_per_generator_and_keeps_the_layout():
    image = _image(1, 64)
    a, b = simclr_colour(image, random.Random(3)), simclr_colour(image, random.Random(3))
    assert torch.equal(a, b) and a.dtype == torch.uint8 and a.shape == image.shape
    assert any(not torch.equal(simclr_colour(image, random.Random(s)), a) for s in range(4, 10))


def test_simclr_applies_its_steps_at_the_papers_probabilities():
    image = _image(2, 32)
    n = 600
    gray = untouched = 0
    for seed in range(n):
        out = simclr_colour(image, random.Random(seed))
        gray += bool((out[0] == out[1]).all() and (out[1] == out[2]).all())
        untouched += torch.equal(out, image)
    # binomial standard deviations at n = 600: about 0.016 (grayscale) and 0.011 (untouched)
    assert abs(gray / n - SIMCLR_P["grayscale"]) < 0.05
    expected_untouched = (1 - SIMCLR_P["jitter"]) * (1 - SIMCLR_P["grayscale"]) * (1 - SIMCLR_P["blur"])
    assert abs(untouched / n - expected_untouched) < 0.04
    assert SIMCLR_JITTER == (0.8, 0.8, 0.8, 0.2)  # strength s = 1: (0.8 s, 0.8 s, 0.8 s, 0.2 s)


def test_simclr_in_the_augmentation_changes_colours_not_geometry():
    image = _image(3)
    plain, coloured = Augment(size=32, simclr=False), Augment(size=32, simclr=True)
    changed = 0
    for seed in range(30):
        a, b = plain(image, random.Random(seed)), coloured(image, random.Random(seed))
        assert a.shape == b.shape
        changed += not torch.equal(a, b)
    assert changed >= 20  # 92 % of draws change something


# ---------------------------------------------------------------- super-resolution


class Double(torch.nn.Module):
    """A stand-in super-resolution model: 2x nearest-neighbour upsampling."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")


class Wrong(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[0]


@pytest.fixture
def rows(tmp_path):
    out = []
    for i in range(4):
        path = tmp_path / "img" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(_image(i, 24).permute(1, 2, 0).numpy()).save(path)
        out.append({"image": str(path), "captions": [f"scene {i} ."] * 5, "source": "s", "split": "train"})
    return out


def _stored_sizes(out_dir) -> list[tuple[int, int]]:
    sizes = []
    for shard in sorted(out_dir.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.name.endswith(".jpg"):
                    sizes.append(Image.open(io.BytesIO(tar.extractfile(member).read())).size)
    return sizes


def _exported(path) -> str:
    side = torch.export.Dim("side", min=2, max=4096)
    program = torch.export.export(Double(), (torch.rand(1, 3, 24, 24),), dynamic_shapes={"x": {2: side, 3: side}})
    torch.export.save(program, str(path))
    return str(path)


def _scripted(path) -> str:
    torch.jit.script(Double()).save(str(path))
    return str(path)


@pytest.mark.parametrize("save,name", [(_exported, "double.pt2"), (_scripted, "double.pt")], ids=["export", "jit"])
@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch deprecates TorchScript
def test_super_resolution_upscales_every_image_before_the_shards(tmp_path, rows, save, name):
    model = save(tmp_path / name)
    sr = {"model": str(model), "device": "cpu"}
    manifest = build_shards(rows, tmp_path / "sr", ShardSettings(max_side=448, super_resolution=sr), run="r")
    assert _stored_sizes(tmp_path / "sr") == [(48, 48)] * 4
    assert manifest["settings"]["super_resolution"] == sr
    plain = build_shards(rows, tmp_path / "plain", ShardSettings(max_side=448), run="r")
    assert _stored_sizes(tmp_path / "plain") == [(24, 24)] * 4
    assert "super_resolution" not in plain["settings"]  # a run without it keeps its manifest


def test_super_resolution_without_a_model_is_refused_before_anything_is_written(tmp_path, rows):
    out = tmp_path / "shards"
    out.mkdir()
    (out / "keep.txt").write_text("earlier shards")
    settings = ShardSettings(super_resolution={"model": None, "device": "auto"})
    with pytest.raises(SuperResolutionError, match=r"runs\.pre_sr\.super_resolution\.model is not set.*does not name"):
        build_shards(rows, out, settings, run="pre_sr")
    assert (out / "keep.txt").is_file()
    missing = ShardSettings(super_resolution={"model": str(tmp_path / "none.pt"), "device": "cpu"})
    with pytest.raises(SuperResolutionError, match=r"none\.pt does not exist"):
        build_shards(rows, out, missing, run="pre_sr")


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_a_model_of_the_wrong_shape_is_named(tmp_path, rows):
    model = tmp_path / "wrong.pt"
    torch.jit.script(Wrong()).save(str(model))
    settings = ShardSettings(super_resolution={"model": str(model), "device": "cpu"})
    with pytest.raises(SuperResolutionError, match=r"wrong\.pt: returned shape \(3, 24, 24\), expected"):
        build_shards(rows, tmp_path / "out", settings, run="r")
