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

from remoteclip.models import create, register_model_configs
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
    plain = collate([cpu[item] for item in items])
    batch = collate([encoded[item] for item in items])
    assert torch.equal(plain.texts, batch.texts)
    assert len({tuple(c) for c in batch.choices.tolist()}) > len(items) // 2  # the draws do vary
    on_device, texts, replaced = decode_on_device(aug, batch, torch.device("cpu"))
    assert torch.equal(texts, plain.texts) and replaced == 0
    std = torch.tensor(aug.std).view(1, 3, 1, 1)
    difference = ((on_device - aug.normalize(plain.images)) * std * 255).abs()  # in 8-bit levels
    assert on_device.shape == (len(items), 3, 32, 32)
    assert float(difference.mean()) < 1.0 and float(difference.max()) <= 8, (difference.mean(), difference.max())


def rewrite_shard(source, out, change):
    """A copy of the shard `source` whose .jpg members pass through change(position, bytes)."""
    with tarfile.open(source) as tar_in, tarfile.open(out, "w") as tar_out:
        jpgs = 0
        for info in (m for m in tar_in if m.isfile()):
            data = tar_in.extractfile(info).read()
            if info.name.endswith(".jpg"):
                data, jpgs = change(jpgs, data), jpgs + 1
            info.size = len(data)
            tar_out.addfile(info, io.BytesIO(data))
    return out


def test_the_device_loader_decodes_a_non_jpeg_member_and_replaces_an_unreadable_one(world, tmp_path):
    """Shards written elsewhere may hold PNG bytes under .jpg: decoded one by one instead; a
    member that is no image at all is replaced by the next sample, as with the cpu loader."""
    _, _, shards = world

    def png_or_junk(k, data):
        if k < 4:
            buffer = io.BytesIO()
            Image.open(io.BytesIO(data)).save(buffer, "PNG")
            return buffer.getvalue()
        return b"not an image" if k < 8 else data

    index = ShardIndex.build([rewrite_shard(sorted(shards.glob("*.tar"))[0], tmp_path / "mixed.tar", png_or_junk)])
    aug = Augment(32, normalize_on_device=True)
    dataset = ShardDataset(index, aug, open_clip.get_tokenizer("ViT-B-32"), encoded=True)
    batch = collate([dataset[(0, i)] for i in range(len(dataset))])
    assert batch.replaced == 4 + 3 + 2 + 1  # items 4-7 each pass over the junk members up to item 8
    images, _, _ = decode_on_device(aug, batch, torch.device("cpu"))
    assert images.shape == (len(dataset), 3, 32, 32)


TRUNCATED, GARBAGE = 2, 5  # positions of the corrupt JPEGs in the first shard


def truncated_or_garbage(k, data):
    """A JPEG cut in half (no end marker), and one whose header is intact but whose entropy-coded
    body is random bytes with the end marker after it: its header reads, its pixels do not."""
    if k == TRUNCATED:
        return data[: len(data) // 2]
    if k == GARBAGE:
        body_start = data.index(b"\xff\xda") + 14  # past the start-of-scan header
        junk = np.random.default_rng(0).integers(0, 256, len(data) - body_start).astype(np.uint8).tobytes()
        return data[:body_start] + junk + b"\xff\xd9"
    return data


@pytest.fixture(scope="module")
def corrupt(world, tmp_path_factory):
    _, _, shards = world
    out = tmp_path_factory.mktemp("corrupt")
    first, *rest = sorted(shards.glob("*.tar"))
    rewrite_shard(first, out / first.name, truncated_or_garbage)
    for shard in rest:
        (out / shard.name).write_bytes(shard.read_bytes())
    return out


def test_the_device_loader_replaces_a_truncated_and_a_garbage_jpeg_by_the_next_samples(corrupt):
    """The truncated JPEG is refused in the worker (no end marker); the garbage body passes the
    header and fails in the training process's decoder, which then takes the next sample. Each
    is replaced, caption included, by the sample after it, as the cpu loader replaces it."""
    aug, cpu, encoded = datasets(corrupt)
    items = [(0, i) for i in range(8)]
    batch = collate([encoded[item] for item in items])
    assert batch.replaced == 1  # the truncated one, in the worker
    with pytest.raises(RuntimeError):  # without a dataset to take the next sample from
        decode_on_device(aug, batch, torch.device("cpu"))
    images, texts, replaced = decode_on_device(aug, batch, torch.device("cpu"), encoded)
    assert replaced == 1 and images.shape == (8, 3, 32, 32)  # the garbage one, on the device
    plain = collate([cpu[item] for item in items])
    assert plain.replaced == 2 and torch.equal(texts, plain.texts)
    for k in (TRUNCATED, GARBAGE):
        assert torch.equal(images[k], images[k + 1]) and torch.equal(texts[k], texts[k + 1])


def expected_replacements(n, steps, batch, corrupt_positions):
    """How often the run draws a corrupt sample: each draw is replaced once (the corrupt
    samples are not next to each other)."""
    from remoteclip.train.data import GlobalBatchSampler

    drawn = [i for items in GlobalBatchSampler(n, batch, 1, 0, 0, steps) for _, i in items]
    return sum(i in corrupt_positions for i in drawn)


@pytest.mark.parametrize("loader", ["cpu", "device"])
def test_runs_with_loader_workers_count_every_replaced_sample(world, corrupt, tmp_path, loader):
    """Two loader workers: the replacements they make (and, with the device loader, those of
    the training process's decoder) reach log.csv and summary.json."""
    _, models, _ = world
    n = len(ShardIndex.build(sorted(corrupt.glob("*.tar"))))
    expected = expected_replacements(n, 6, 16, {TRUNCATED, GARBAGE})
    assert expected >= 2
    run_training(corrupt, tmp_path / "run", tmp_path / "m.pt", settings(steps=6, workers=2, loader=loader), models)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["replaced_samples"] == expected
    assert sum(int(r["replaced"]) for r in log_rows(tmp_path / "run")) == expected


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


# names as torch.cuda.get_device_name (the driver, nvidia-smi -L) reports them
@pytest.mark.parametrize(
    "name, peak",
    [
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H100 NVL", 835.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA H200 NVL", 835.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA A100-SXM4-40GB", 312.0),
        ("NVIDIA A100-PCIE-40GB", 312.0),
        ("NVIDIA A100 80GB PCIe", 312.0),
        ("Tesla V100-SXM2-32GB", 125.0),
        ("Tesla V100-PCIE-16GB", 112.0),
        ("NVIDIA RTX A1000", None),  # "A100" is part of its name, not its model
        ("NVIDIA A10", None),
        ("NVIDIA A100X", None),
        ("NVIDIA A800-SXM4-80GB", None),
        ("NVIDIA H800", None),
        ("NVIDIA GH200 480GB", None),
        ("NVIDIA L40S", None),
        ("NVIDIA GeForce RTX 4090", None),
        ("Tesla V100S-PCIE-32GB", None),
    ],
)
def test_the_peak_table_matches_whole_device_names(name, peak):
    assert speed.known_peak(name) == peak


def analytic_forward_flops(image_size, patch, width, layers, text_context, text_width, text_layers, embed_dim):
    """Multiply-adds x 2 of one (image, caption) forward of an open_clip ViT CLIP: the patch
    embedding, per block QKV, attention scores, weighted values, output projection and a 4x MLP,
    both towers (the text tower's causal mask is applied to a full score matrix), and the two
    projections to the embedding (of the class token and of the end-of-text token)."""

    def blocks(tokens, d, n):
        return n * (
            2 * tokens * d * 3 * d + 2 * tokens * tokens * d * 2 + 2 * tokens * d * d + 2 * tokens * d * 4 * d * 2
        )

    patches = (image_size // patch) ** 2
    image = 2 * (3 * patch * patch) * width * patches + blocks(patches + 1, width, layers) + 2 * width * embed_dim
    text = blocks(text_context, text_width, text_layers) + 2 * text_width * embed_dim
    return image + text


def test_the_flop_count_sees_every_product_of_the_tiny_vit(world):
    """Against the analytic count: the image tower's QKV and output projections (missed under
    nn.MultiheadAttention's eval fast path) and the attention scores (a fused CPU kernel) included."""
    _, models, _ = world
    register_model_configs(models)
    model, _, _ = create("tiny-test-ViT", None)
    counted = speed.flops_per_sample(model, 32, open_clip.get_tokenizer("tiny-test-ViT")(["a"]), torch.device("cpu"))
    expected = 3 * analytic_forward_flops(32, 8, 64, 2, 16, 64, 2, 32)
    assert counted == pytest.approx(expected, rel=0.01)
    assert torch.backends.mha.get_fastpath_enabled()  # switched back on


def test_the_flop_count_of_vit_b_32_is_the_analytic_one():
    model = open_clip.create_model("ViT-B-32")  # random weights: nothing is fetched
    counted = speed.flops_per_sample(model, 224, open_clip.get_tokenizer("ViT-B-32")(["a"]), torch.device("cpu"))
    expected = 3 * analytic_forward_flops(224, 32, 768, 12, 77, 512, 12, 512)  # 44.3 GFLOP per pair
    assert counted == pytest.approx(expected, rel=0.02)


def test_two_ranks_log_the_rates_of_one_device(world, tmp_path):
    """MFU is one device's: each rank computes its half of the global batch, so a 2-rank run logs
    per-device TFLOP/s for 8 of the 16 samples per step (the 1-rank formula on the rank's share),
    the run's samples/s for all 16, and its world size."""
    _, models, shards = world
    run_training(shards, tmp_path / "run", None, settings(steps=2, peak_tflops=0.5), models, nproc=2)
    flops = json.loads((tmp_path / "run" / "settings.json").read_text())["speed"]["flops_per_sample"]
    for row in log_rows(tmp_path / "run"):
        step_s = float(row["step_s"])
        assert int(row["world_size"]) == 2
        assert float(row["samples_per_s"]) == pytest.approx(16 / step_s, rel=1e-6)
        assert float(row["tflops"]) == pytest.approx(flops * 8 / step_s / 1e12, rel=1e-3, abs=1e-4)
        assert float(row["mfu"]) == pytest.approx(float(row["tflops"]) / 0.5, abs=2e-4)


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
