"""Image-encoder initialisation (paper Table V, initialisation ablation; remoteclip.image_encoders
and models.hybrid_towers): every entry with a checkpoint loads, strictly, a file of random
weights written in exactly that checkpoint's key layout (timm's own state dict for the timm
files, torchvision's ResNet-50 with the authors' extra keys for SwAV, VICReg and Barlow Twins),
the trunk then holds the file's tensors and the text tower the CLIP model's. The text side is a
tiny registered architecture, so only the real trunks cost time. No download: the one fetch
goes to a Hub played on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import pytest
import timm
import torch
import torchvision
import yaml
from safetensors.torch import save_file

from hubserver import HubServer
from remoteclip.evaluate.models import load as load_eval_model
from remoteclip.evaluate.registry import resolve
from remoteclip.image_encoders import IMAGE_ENCODERS, ImageEncoderError, hybrid_arch
from remoteclip.models import KeyMismatch, configs, create, export, register_model_configs
from remoteclip.train.settings import ModelSettings
from remoteclip.weights.cache import WeightSource, image_encoder_path, manifest_path, needed
from test_weights_cache import fetch_in_process
from workflow_helpers import REPO

ARCH = "tiny-init-text"
TINY = {  # only its text tower and embedding width are used: the image tower is the entry's
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[str, dict[str, torch.Tensor]]:
    """(a 'pretrained' checkpoint of the tiny CLIP architecture, its state dict)."""
    folder = tmp_path_factory.mktemp("arch")
    (folder / f"{ARCH}.json").write_text(json.dumps(TINY))
    register_model_configs(folder)
    torch.manual_seed(7)
    state = open_clip.create_model(ARCH).state_dict()
    torch.save(state, folder / "clip.pt")
    return str(folder / "clip.pt"), state


def _random(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's state dict with every float tensor random (so that equality means loaded)."""
    gen = torch.Generator().manual_seed(1)
    return {
        k: torch.randn(v.shape, generator=gen) if v.is_floating_point() else v for k, v in module.state_dict().items()
    }


@pytest.fixture(scope="module")
def timm_resnet50():  # timm/resnet50.tv_in1k's layout: timm's resnet50 with its fc classifier
    return _random(timm.create_model("resnet50", pretrained=False))


@pytest.fixture(scope="module")
def torchvision_resnet50():  # what the SwAV/VICReg/Barlow Twins files hold, their hubconf.py load it into
    return _random(torchvision.models.resnet50(weights=None))


@pytest.fixture(scope="module")
def timm_vit_b32():  # timm/vit_base_patch32_224.augreg_in1k: with its 1000-class head
    return _random(timm.create_model("vit_base_patch32_224", pretrained=False))


@pytest.fixture(scope="module")
def timm_dinov2():  # timm/vit_base_patch14_dinov2.lvd142m: 518 px position embedding, no head
    return _random(timm.create_model("vit_base_patch14_dinov2", pretrained=False))


def _swav(resnet: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SwAV's swav_800ep_pretrain.pth.tar: its training model under DDP ("module."), without
    fc (their hubconf loads it with strict=False and says fc is random), with the projection
    head (2048-2048-BN-ReLU-128) and 3000 prototypes of src/resnet50.py."""
    gen = torch.Generator().manual_seed(2)
    extra = {
        "projection_head.0.weight": torch.randn(2048, 2048, generator=gen),
        "projection_head.0.bias": torch.randn(2048, generator=gen),
        "projection_head.1.weight": torch.randn(2048, generator=gen),
        "projection_head.1.bias": torch.randn(2048, generator=gen),
        "projection_head.1.running_mean": torch.randn(2048, generator=gen),
        "projection_head.1.running_var": torch.rand(2048, generator=gen),
        "projection_head.1.num_batches_tracked": torch.tensor(5),
        "projection_head.3.weight": torch.randn(128, 2048, generator=gen),
        "projection_head.3.bias": torch.randn(128, generator=gen),
        "prototypes.weight": torch.randn(3000, 128, generator=gen),
    }
    return {f"module.{k}": v for k, v in (_no_fc(resnet) | extra).items()}


def _no_fc(resnet: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """VICReg's resnet50.pth (its resnet.py has no fc; hubconf loads it strictly) and Barlow
    Twins' (the backbone alone; hubconf loads it with strict=False into torchvision's)."""
    return {k: v for k, v in resnet.items() if not k.startswith("fc.")}


def _write(folder: Path, name: str, state: dict[str, torch.Tensor]) -> Path:
    path = folder / IMAGE_ENCODERS[name].filename
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save(state, path)
    return path


# entry -> (the fixture of its file's tensors, how the release changes them, keys not in the trunk)
LAYOUTS = {
    "imagenet-rn50": ("timm_resnet50", None, ("fc.",)),
    "swav-rn50": ("torchvision_resnet50", _swav, ()),
    "vicreg-rn50": ("torchvision_resnet50", _no_fc, ()),
    "barlowtwins-rn50": ("torchvision_resnet50", _no_fc, ()),
    "imagenet-vit-b": ("timm_vit_b32", None, ("head.",)),
    "dinov2-vit-b": ("timm_dinov2", None, ()),
}


def test_every_entry_has_a_layout_or_says_why_not():
    assert set(LAYOUTS) == {n for n, e in IMAGE_ENCODERS.items() if not e.unavailable}
    assert "OneDrive" in str(IMAGE_ENCODERS["vitae-vit-b"].unavailable)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_a_checkpoint_in_its_real_layout_loads_strictly(name, clip, tmp_path, request):
    fixture, release, _ = LAYOUTS[name]
    state = request.getfixturevalue(fixture)
    state = release(state) if release else state
    path = _write(tmp_path, name, state)
    clip_path, clip_state = clip
    model, _, _ = create(ARCH, clip_path, image_init=name, image_checkpoint=str(path))

    trunk = model.visual.trunk.state_dict()
    entry = IMAGE_ENCODERS[name]
    mapped = {k.removeprefix(entry.strip): v for k, v in state.items()}
    mapped = {k: v for k, v in mapped.items() if not k.startswith(("fc.", "head.", "projection_head.", "prototypes."))}
    assert trunk.keys() == mapped.keys()
    resampled = {"pos_embed"} if name == "dinov2-vit-b" else set()
    assert all(torch.equal(trunk[k], mapped[k]) for k in mapped if k not in resampled)
    if resampled:  # 518 px (37x37 patches) resampled by timm to the runs' 224 px (16x16)
        assert mapped["pos_embed"].shape == (1, 1 + 37 * 37, 768) and trunk["pos_embed"].shape == (1, 1 + 16 * 16, 768)
        assert torch.equal(trunk["pos_embed"][:, 0], mapped["pos_embed"][:, 0])  # the class token's is kept
    own = model.state_dict()
    text = {k: v for k, v in clip_state.items() if not k.startswith("visual.") and k != "logit_scale"}
    assert all(torch.equal(own[k], v) for k, v in text.items())
    assert own["visual.head.proj.weight"].shape[0] == TINY["embed_dim"]  # the linear projection to the embedding
    with torch.no_grad():
        image, tokens = torch.randn(1, 3, 224, 224), open_clip.get_tokenizer(ARCH)(["a harbour"])
        features = model.eval().encode_image(image), model.encode_text(tokens)
    assert [f.shape[-1] for f in features] == [32, 32]


@pytest.fixture(scope="module")
def rn50_file(timm_resnet50, tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("imagenet"), "imagenet-rn50", timm_resnet50)


def test_a_trained_run_loads_back_into_the_hybrid_registered_on_demand(clip, rn50_file, tmp_path):
    clip_path, _ = clip
    model = {"arch": ARCH, "pretrained": clip_path, "force_quick_gelu": False, "image_init": "imagenet-rn50"}
    model["image_checkpoint"] = str(rn50_file)
    config = {"runs": {"init_run": {"model": model, "train": {"seed": 0}}}}
    trained, _, _ = create(ARCH, clip_path, image_init="imagenet-rn50", image_checkpoint=str(rn50_file))
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.5)  # as if trained: no longer the initialisation
    path = export(trained, tmp_path / "init_run.pt", ARCH)

    # a fresh evaluation process knows no hybrid until the spec names it
    hybrid = hybrid_arch(ARCH, "imagenet-rn50")
    open_clip.factory._MODEL_CONFIGS.pop(hybrid)
    configs._REGISTERED.pop(hybrid)
    spec = resolve("trained", {"run": "init_run"}, config) | {"checkpoint": str(path)}
    assert spec["arch"] == hybrid
    scored, _, _ = load_eval_model(spec)
    assert all(torch.equal(scored.state_dict()[k], v) for k, v in trained.state_dict().items())

    # the run's initialisation, scored as the run starts from it
    init = resolve("init", {"run": "init_run", "init": True}, config)
    start, _, _ = load_eval_model(init)
    own = start.visual.trunk.state_dict()
    assert all(torch.equal(own[k], v) for k, v in load_state(rn50_file).items() if not k.startswith("fc."))


def load_state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path)


def test_a_checkpoint_of_another_network_is_refused_with_its_keys(clip, timm_vit_b32, tmp_path):
    vit = _write(tmp_path, "imagenet-vit-b", timm_vit_b32)
    with pytest.raises(KeyMismatch) as err:
        create(ARCH, clip[0], image_init="imagenet-rn50", image_checkpoint=str(vit))
    message = str(err.value)
    assert "as image_init imagenet-rn50 (resnet50" in message and "do not fit" in message
    assert "missing: " in message and "bn1." in message
    assert "unexpected: " in message and "blocks.0." in message


def test_an_entry_without_a_checkpoint_is_refused_with_its_reason(clip):
    with pytest.raises(ValueError, match="vitae-vit-b .*OneDrive"):
        ModelSettings(arch="ViT-B-32", image_init="vitae-vit-b")  # before training starts
    with pytest.raises(ValueError, match="vitae-vit-b .*no timm architecture"):
        ModelSettings(arch="ViT-B-32", image_init="vitae-vit-b", image_checkpoint="mine.pth")
    with pytest.raises(ImageEncoderError, match="OneDrive"):
        create(ARCH, clip[0], image_init="vitae-vit-b")
    with pytest.raises(ValueError, match="without model.image_init"):
        ModelSettings(image_checkpoint="mine.pth")


def test_a_missing_fetched_file_names_the_fetch_rule(clip, tmp_path):
    with pytest.raises(
        FileNotFoundError, match="swav-rn50: .*swav_800ep_pretrain.pth.tar not found; the fetch_weights rule"
    ):
        create(ARCH, clip[0], image_init="swav-rn50", weights_cache=tmp_path)
    with pytest.raises(FileNotFoundError, match="image_checkpoint nowhere.pth does not exist"):
        create(ARCH, clip[0], image_init="swav-rn50", image_checkpoint="nowhere.pth")


def test_the_ablation_config_fetches_every_entry_it_can():
    from remoteclip.config import load

    config = load(REPO / "config" / "ablations.yaml", REPO / "workflow/schemas/config.schema.yaml")
    models = {n: resolve(n, e, config) for n, e in config["evaluation"]["models"].items()}
    keys = {k for k in needed(config, models) if k.startswith("image_init")}
    # vitae-vit-b has none to fetch (its run is refused with the reason when it starts)
    assert keys == {f"image_init--{n}" for n in LAYOUTS}


def test_fetch_puts_the_file_where_the_job_looks_and_locks_it(tmp_path):
    data = b"timm weights of resnet50.tv_in1k, as the Hub serves them"
    source = WeightSource("image_init", tag="imagenet-rn50")
    cache, lock = tmp_path / "weights", tmp_path / "weights.lock.yaml"
    with HubServer() as hub:
        hub.add("timm/resnet50.tv_in1k", "model.safetensors", data)
        proc = fetch_in_process(source, cache, lock, hub, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    target = image_encoder_path(cache, IMAGE_ENCODERS["imagenet-rn50"])
    assert target.read_bytes() == data
    (record,) = json.loads(manifest_path(cache, source).read_text())["files"]
    assert Path(record["path"]) == target.absolute() and record["verified_by"] == "published sha256"
    assert yaml.safe_load(lock.read_text())["weights"][source.key]["model.safetensors"]["sha256"] == record["sha256"]
