"""The training switches that change speed, not what is learned (train.loader: device,
train.compile, fused_adamw, channels_last), and the FLOPs and MFU columns of log.csv.

The device loader is checked on the CPU, where torchvision decodes the same JPEGs with
libjpeg-turbo; on CUDA it decodes with nvJPEG (not testable here, measured by
benchmarks/gpu_check.sh when a GPU is lent)."""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from remoteclip.train import speed
from remoteclip.train.data import Augment, ShardDataset, ShardIndex, collate, decode_on_device
from remoteclip.train.settings import TrainSettings
from train_helpers import run_training, settings, tiny_model_dir, tiny_shards

TINY_RESNET = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


# one layer per tower: inductor's compile time grows with the graph, and one block shows it all
TINY_ONE_LAYER = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("speed")
    models = tiny_model_dir(root)
    (models / "tiny-test-RN.json").write_text(json.dumps(TINY_RESNET))
    (models / "tiny-compile-ViT.json").write_text(json.dumps(TINY_ONE_LAYER))
    return root, models, tiny_shards(root, n=64, per_shard=20)


def datasets(shards, size=32, **augment):
    index = ShardIndex.build(sorted(shards.glob("*.tar")))
    aug = Augment(size, normalize_on_device=True, **augment)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    return aug, ShardDataset(index, aug, tokenizer, seed=3), ShardDataset(index, aug, tokenizer, seed=3, encoded=True)


def test_the_device_loader_draws_what_the_cpu_loader_draws(world):
    """Same captions and the same crop, flip and rotation per sample; the pixels differ only by
    the two JPEG decoders' rounding (PIL vs torchvision's libjpeg-turbo build)."""
    _, _, shards = world
    aug, cpu, encoded = datasets(shards)
    items = [(epoch, i) for epoch in (0, 1) for i in range(0, 64, 5)]
    images, texts = collate([cpu[item] for item in items])
    datas, choices, encoded_texts = collate([encoded[item] for item in items])
    assert torch.equal(texts, encoded_texts)
    assert len({tuple(c) for c in choices.tolist()}) > len(items) // 2  # the draws do vary
    on_device = decode_on_device(aug, datas, choices, torch.device("cpu"))
    std = torch.tensor(aug.std).view(1, 3, 1, 1)
    difference = ((on_device - aug.normalize(images)) * std * 255).abs()  # in 8-bit levels
    assert on_device.shape == (len(items), 3, 32, 32)
    assert float(difference.mean()) < 1.0 and float(difference.max()) <= 8, (difference.mean(), difference.max())


def test_the_device_loader_decodes_a_non_jpeg_member_and_replaces_an_unreadable_one(world, tmp_path):
    """Shards written elsewhere may hold PNG bytes under .jpg: decoded one by one instead; a
    member that is no image at all is replaced by the next sample, as with the cpu loader."""
    _, _, shards = world
    source = sorted(shards.glob("*.tar"))[0]
    out = tmp_path / "mixed.tar"
    with tarfile.open(source) as tar_in, tarfile.open(out, "w") as tar_out:
        for k, info in enumerate(m for m in tar_in if m.isfile()):
            data = tar_in.extractfile(info).read()
            if info.name.endswith(".jpg") and k < 4:
                buffer = io.BytesIO()
                Image.open(io.BytesIO(data)).save(buffer, "PNG")
                data = buffer.getvalue()
            elif info.name.endswith(".jpg") and k < 8:
                data = b"not an image"
            info.size = len(data)
            tar_out.addfile(info, io.BytesIO(data))
    index = ShardIndex.build([out])
    aug = Augment(32, normalize_on_device=True)
    dataset = ShardDataset(index, aug, open_clip.get_tokenizer("ViT-B-32"), encoded=True)
    datas, choices, _ = collate([dataset[(0, i)] for i in range(len(dataset))])
    assert dataset.replaced >= 1
    assert decode_on_device(aug, datas, choices, torch.device("cpu")).shape == (len(dataset), 3, 32, 32)


def test_an_unknown_compile_backend_is_named():
    with pytest.raises(ValueError, match="unknown backend 'inductr'.*inductor"):
        TrainSettings(steps=1, compile="inductr")


def test_simclr_needs_the_cpu_loader():
    with pytest.raises(ValueError, match="simclr.*loader cpu"):
        TrainSettings(steps=1, loader="device", simclr=True)
    with pytest.raises(ValueError, match="loader must be cpu or device"):
        TrainSettings(steps=1, loader="gpu")


class Linear(torch.nn.Module):
    """A model whose training FLOPs are known: one linear map of the flattened image
    (2 * inputs * outputs per sample forward), a batch norm that must keep its statistics."""

    def __init__(self, size: int, out: int):
        super().__init__()
        self.norm = torch.nn.BatchNorm2d(3)
        self.proj = torch.nn.Linear(3 * size * size, out, bias=False)

    def forward(self, image, text):
        return self.proj(self.norm(image).flatten(1)), text


def test_flops_per_sample_are_three_counted_forwards_and_change_nothing():
    torch.manual_seed(0)
    model = Linear(8, 5).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flops = speed.flops_per_sample(model, 8, torch.zeros(4, 16, dtype=torch.long), torch.device("cpu"))
    assert flops == 3 * 2 * (3 * 8 * 8) * 5
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_peak_is_given_or_known_and_otherwise_absent():
    cpu = torch.device("cpu")
    assert speed.peak_tflops(cpu, None, None) is None
    assert speed.peak_tflops(cpu, None, 50.0) == 50.0
    assert dict(speed.PEAK_TFLOPS)["H100 80GB HBM3"] == 989.0


def test_channels_last_auto_is_for_convolutional_towers_on_cuda():
    vit = open_clip.create_model("ViT-B-32")  # random weights: nothing is fetched
    resnet = open_clip.create_model("RN50")
    assert speed.is_convolutional(resnet) and not speed.is_convolutional(vit)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert speed.use_channels_last("auto", resnet, cuda) and not speed.use_channels_last("auto", vit, cuda)
    assert not speed.use_channels_last("auto", resnet, cpu) and speed.use_channels_last(True, vit, cpu)
    assert speed.use_fused_adamw("auto", cuda) and not speed.use_fused_adamw("auto", cpu)


def log_rows(out):
    with open(out / "log.csv") as fh:
        return list(csv.DictReader(fh))


def final_weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_device_loader_run_logs_flops_and_mfu_and_trains_like_the_cpu_loader(world, tmp_path):
    root, models, shards = world
    run_training(shards, tmp_path / "cpu", tmp_path / "cpu.pt", settings(steps=4), models)
    device_cfg = settings(steps=4, loader="device", peak_tflops=0.5)
    run_training(shards, tmp_path / "dev", tmp_path / "dev.pt", device_cfg, models)
    cpu_rows, dev_rows = log_rows(tmp_path / "cpu"), log_rows(tmp_path / "dev")
    # the same samples with pixels a decoder's rounding apart: the losses agree closely
    for a, b in zip(cpu_rows, dev_rows):
        assert abs(float(a["loss"]) - float(b["loss"])) < 0.02, (a["loss"], b["loss"])
    assert all(r["mfu"] == "" for r in cpu_rows)  # no peak known for a CPU
    for row in dev_rows:
        tflops = float(row["tflops"])
        assert tflops > 0 and float(row["mfu"]) == pytest.approx(tflops / 0.5, abs=2e-4)
    run = json.loads((tmp_path / "dev" / "settings.json").read_text())
    flops = run["speed"]["flops_per_sample"]
    assert flops > 0 and run["speed"]["loader"] == "device"
    row = dev_rows[-1]
    assert float(row["tflops"]) == pytest.approx(flops * 16 / float(row["step_s"]) / 1e12, rel=1e-3, abs=1e-4)
    # speed switches are not part of the recipe: the two runs have one fingerprint
    assert run["fingerprint"] == json.loads((tmp_path / "cpu" / "settings.json").read_text())["fingerprint"]


def test_fused_adamw_and_channels_last_train_the_same_weights(world, tmp_path):
    """Both switches on the tiny ModifiedResNet (what channels-last is for), against neither."""
    root, models, shards = world
    switches = {"fused_adamw": True, "channels_last": True}
    # Adam turns rounding differences into full steps where a gradient is ~0: a larger eps
    # keeps those coordinates still (as in test_train.py's equivalence tests)
    base = settings(steps=3, eps=1e-4)
    base["model"]["arch"] = "tiny-test-RN"
    fast = json.loads(json.dumps(base))
    fast["train"].update(switches)
    run_training(shards, tmp_path / "base", tmp_path / "base.pt", base, models)
    run_training(shards, tmp_path / "fast", tmp_path / "fast.pt", fast, models)
    a, b = final_weights(tmp_path / "base.pt"), final_weights(tmp_path / "fast.pt")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key].float().numpy(), b[key].float().numpy(), atol=2e-5, err_msg=key)
    run = json.loads((tmp_path / "fast" / "settings.json").read_text())["speed"]
    assert all(run[name] is True for name in switches)


INDUCTOR_OPT_IN = "REMOTECLIP_INDUCTOR_TEST"


@pytest.mark.parametrize(
    "backend",
    [
        "aot_eager",  # dynamo's graph and AOT autograd, no code generation: the wiring, in seconds
        pytest.param(
            True,  # inductor: generates and compiles C++ kernels, about a minute on two CPUs
            marks=pytest.mark.skipif(
                os.environ.get(INDUCTOR_OPT_IN) != "1", reason=f"inductor's compile takes a minute: {INDUCTOR_OPT_IN}=1"
            ),
            id="inductor",
        ),
    ],
)
def test_compiled_training_follows_the_eager_trajectory(world, tmp_path, backend):
    root, models, shards = world
    eager, compiled = settings(steps=3, eps=1e-4), settings(steps=3, eps=1e-4, compile=backend)  # eps: see above
    for cfg in (eager, compiled):
        cfg["model"]["arch"] = "tiny-compile-ViT"
    run_training(shards, tmp_path / "eager", tmp_path / "eager.pt", eager, models)
    run_training(shards, tmp_path / "compiled", tmp_path / "compiled.pt", compiled, models)
    losses = [[float(r["loss"]) for r in log_rows(tmp_path / run)] for run in ("eager", "compiled")]
    np.testing.assert_allclose(losses[0], losses[1], atol=1e-4)
    a, b = final_weights(tmp_path / "eager.pt"), final_weights(tmp_path / "compiled.pt")
    assert a.keys() == b.keys()  # the export is the plain model's, no _orig_mod. prefix
    for key in a:
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), atol=1e-4, err_msg=key)
