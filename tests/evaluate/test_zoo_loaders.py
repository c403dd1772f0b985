"""The model zoo's loaders: for every release format, a seeded random tiny model written in
exactly that format's file layout and key names is fetched into (or placed in) the weights
cache, loads strictly through the zoo entry, gives the same embeddings as the model it was
written from, and scores a classification benchmark. hf-hub: and transformers releases are
served by a Hugging Face Hub on 127.0.0.1 and fetched by the fetch_weights code, then loaded
offline. Bad entries and bad files give errors that name the problem."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hubserver import HubServer
from remoteclip.evaluate.features import embed
from remoteclip.evaluate.models import load
from remoteclip.evaluate.registry import leaderboard_models, resolve
from remoteclip.evaluate.tasks import run
from remoteclip.models.loaders import KeyMismatch, _embedding_rows
from remoteclip.schema import defaults
from remoteclip.weights.cache import eval_sources
from remoteclip.weights.files import CheckpointError
from remoteclip.zoo import ZooError, load_zoo

from .conftest import TINY_ARCH, TINY_EVAL_VIT

ENTRY = {
    "family": "RemoteCLIP",
    "arch": TINY_ARCH,
    "quick_gelu": False,
    "image_size": 32,
    "tokenizer": "open_clip",
    "licence": "Apache-2.0",
    "paper": "a test",
    "repository": "https://example.org/repo",
}


def write_zoo(folder: Path, models: dict) -> Path:
    path = folder / "models.yaml"
    path.write_text(yaml.safe_dump({"models": models}))
    return path


def config_for(folder: Path, zoo: Path) -> dict:
    return {"zoo": str(zoo), "data": {"weights": str(folder / "weights")}, "evaluation": {"leaderboard": None}}


def spec_of(folder: Path, name: str, entry: dict) -> dict:
    zoo = write_zoo(folder, {name: entry})
    return resolve(name, {"zoo": name}, config_for(folder, zoo))


def placed(spec: dict, obj, save=torch.save) -> Path:
    """Put a release file where the zoo entry's weights lie once fetched."""
    path = Path(spec["checkpoint"])
    path.parent.mkdir(parents=True, exist_ok=True)
    save(obj, path)
    return path


def score(spec: dict, split: dict, cache: Path | None = None):
    """(images, texts, zero-shot result) of a zoo spec on a benchmark split."""
    model, preprocess, tokenizer = load(spec, "cpu", weights_cache=cache)
    images, texts = embed(model, preprocess, tokenizer, split, ["a satellite photo of {}."], [], "cpu", 16, 0)
    result = run("zeroshot", "scenes", spec, split, images, texts, defaults("evaluation"))
    return images, texts, result


@pytest.fixture(scope="module")
def reference(tiny_clip, cls_split):
    """The tiny model's own embeddings of the benchmark: what every layout must reproduce."""
    model, preprocess, tokenizer = tiny_clip
    return embed(model, preprocess, tokenizer, cls_split, ["a satellite photo of {}."], [], "cpu", 16, 0)


def itra_layout(state: dict) -> dict:
    """ITRA's ItraModel keys (ChenDelong1999/ITRA itra/model/model.py): the open_clip image
    tower as image_backbone, the text tower (CLIP without visual) as text_backbone, the logit
    scale moved up to the model; DDP's module. prefix; saved in the epoch checkpoint dict."""
    keys = {}
    for key, value in state.items():
        if key.startswith("visual."):
            keys["module.image_backbone." + key[len("visual.") :]] = value
        elif key == "logit_scale":
            keys["module.logit_scale"] = value
        else:
            keys["module.text_backbone." + key] = value
    return {"epoch": 3, "name": "itra-run", "state_dict": keys, "optimizer": {"state": {}, "param_groups": []}}


LAYOUTS = {
    "state_dict": (lambda state: state, "RemoteCLIP-tiny.pt"),
    "open_clip_train": (
        lambda state: {
            "epoch": 5,
            "name": "skyclip-run",
            "state_dict": {f"module.{k}": v for k, v in state.items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 1e-5, "params": [0]}]},
        },
        "epoch_5.pt",
    ),
    "itra": (itra_layout, "epoch_3.pt"),
}


@pytest.mark.parametrize("fmt", sorted(LAYOUTS))
def test_each_checkpoint_layout_loads_strictly_and_scores(
    fmt, tmp_path, tiny_clip, tiny_model_dir, cls_split, reference
):
    layout, file = LAYOUTS[fmt]
    entry = {**ENTRY, "format": fmt, "weights": {"hf": {"repo": "org/tiny", "file": file}}}
    spec = spec_of(tmp_path, f"tiny-{fmt}", entry)
    placed(spec, layout(tiny_clip[0].state_dict()))
    images, texts, result = score(spec, cls_split)
    np.testing.assert_allclose(images["features"], reference[0]["features"], atol=1e-5)
    np.testing.assert_allclose(texts["class_features"], reference[1]["class_features"], atol=1e-5)
    assert 0 <= result["metrics"]["acc1"] <= 100 and result["model"] == f"tiny-{fmt}"


# SkyCLIP's layout (wangzhecheng/SkyScript "Download model checkpoints"): a zip per model at
# .../SkyScript/ckpt/<name>.zip whose checkpoint is <name>/epoch_20.pt, the open_clip_train dict
# of a DDP run; the zip stands beside files a run folder holds as well
SKY_ZIP = "SkyCLIP_ViT_B32_top50pct.zip"
SKY_MEMBER = "SkyCLIP_ViT_B32_top50pct/epoch_20.pt"


def skyclip_zip(state: dict, members: tuple[str, ...] = (SKY_MEMBER,)) -> bytes:
    import io
    import zipfile

    checkpoint = io.BytesIO()
    torch.save(LAYOUTS["open_clip_train"][0](state), checkpoint)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("SkyCLIP_ViT_B32_top50pct/", b"")
        zf.writestr("SkyCLIP_ViT_B32_top50pct/out.log", b"epoch 20 done\n")
        for member in members:
            zf.writestr(member, checkpoint.getvalue())
    return out.getvalue()


def sky_entry(url: str, member: str = SKY_MEMBER) -> dict:
    weights = {"url": url, "member": member}
    return {**ENTRY, "family": "SkyCLIP", "format": "open_clip_train", "weights": weights}


def test_a_zip_release_is_fetched_and_its_member_loads(tmp_path, tiny_clip, tiny_model_dir, cls_split, reference):
    from httpserver import FixtureServer
    from remoteclip.weights.fetch import fetch

    data = skyclip_zip(tiny_clip[0].state_dict())
    cache, lock = tmp_path / "weights", tmp_path / "weights.lock.yaml"
    with FixtureServer() as server:
        spec = spec_of(tmp_path, "tiny-sky", sky_entry(server.add(f"SkyScript/ckpt/{SKY_ZIP}", data)))
        (source,) = eval_sources(spec)
        manifest = fetch(source, cache, lock)
    archive, member = manifest["files"]
    assert Path(archive["path"]).read_bytes() == data and Path(member["path"]) == Path(spec["checkpoint"]).absolute()
    assert member["verified_by"] == f"member of {SKY_ZIP}" and spec["checkpoint"].endswith(SKY_MEMBER)
    # the lock holds the archive's digest: what the URL serves, checked on every later fetch
    assert set(yaml.safe_load(lock.read_text())["weights"][source.key]) == {SKY_ZIP}
    images, texts, result = score(spec, cls_split)
    np.testing.assert_allclose(images["features"], reference[0]["features"], atol=1e-5)
    np.testing.assert_allclose(texts["class_features"], reference[1]["class_features"], atol=1e-5)
    assert 0 <= result["metrics"]["acc1"] <= 100


def test_a_zip_placed_by_hand_is_extracted_by_the_loader(tmp_path, tiny_clip, tiny_model_dir, cls_split, reference):
    spec = spec_of(tmp_path, "tiny-sky", sky_entry(f"https://example.org/ckpt/{SKY_ZIP}"))
    with pytest.raises(FileNotFoundError, match=rf"weights .*url/{SKY_ZIP} not found"):
        load(spec)  # what to place is the archive, not the member inside it
    Path(spec["archive"]).parent.mkdir(parents=True)
    Path(spec["archive"]).write_bytes(skyclip_zip(tiny_clip[0].state_dict()))
    images, _, _ = score(spec, cls_split)
    np.testing.assert_allclose(images["features"], reference[0]["features"], atol=1e-5)


def test_a_zip_without_the_member_names_the_members_it_has(tmp_path, tiny_clip, tiny_model_dir):
    spec = spec_of(tmp_path, "tiny-sky", sky_entry(f"https://example.org/ckpt/{SKY_ZIP}", "SkyCLIP/epoch_20.pt"))
    Path(spec["archive"]).parent.mkdir(parents=True)
    Path(spec["archive"]).write_bytes(skyclip_zip(tiny_clip[0].state_dict()))
    with pytest.raises(
        CheckpointError,
        match=r"no member 'SkyCLIP/epoch_20\.pt' .* 2 file\(s\): SkyCLIP_ViT_B32_top50pct/out\.log, "
        r"SkyCLIP_ViT_B32_top50pct/epoch_20\.pt",
    ):
        load(spec)


def test_a_member_needs_a_url_and_a_checkpoint_format(tmp_path):
    hf = {**ENTRY, "format": "open_clip_train", "weights": {"hf": {"repo": "o/r", "file": "x.zip"}, "member": "a.pt"}}
    with pytest.raises(ZooError, match=r"bad\.weights: 'url' is a required property"):
        load_zoo(write_zoo(tmp_path, {"bad": hf}))
    escape = sky_entry("https://example.org/x.zip", "../../etc/passwd")
    with pytest.raises(ZooError, match=r"bad\.weights\.member"):
        load_zoo(write_zoo(tmp_path, {"bad": escape}))


def test_safetensors_release_loads(tmp_path, tiny_clip, tiny_model_dir, cls_split, reference):
    from safetensors.torch import save_file

    entry = {**ENTRY, "format": "safetensors", "weights": {"url": "https://example.org/w/tiny.safetensors"}}
    spec = spec_of(tmp_path, "tiny-st", entry)
    assert spec["checkpoint"].endswith("url/tiny.safetensors")
    state = {k: v.contiguous() for k, v in tiny_clip[0].state_dict().items()}
    placed(spec, state, lambda obj, path: save_file(obj, str(path)))
    images, _, _ = score(spec, cls_split)
    np.testing.assert_allclose(images["features"], reference[0]["features"], atol=1e-5)


@pytest.mark.parametrize("fmt, with_masks", [("state_dict", False), ("open_clip_train", True)])
def test_long_clip_text_positions_fold_into_a_longer_open_clip_tower(fmt, with_masks, tmp_path, tiny_model_dir):
    """DGTRS-CLIP's plain Long-CLIP state dict and FarSLIP2's fork checkpoint (with its mask
    buffers): positional_embedding for the first 20 positions, positional_embedding_res after."""
    import open_clip

    from remoteclip.models.loaders import with_context_length

    longer = with_context_length(TINY_ARCH, 32)  # the tiny tower has 24 positions
    torch.manual_seed(7)
    reference = open_clip.create_model(longer).eval()
    state = dict(reference.state_dict())
    true = state["positional_embedding"]
    noise = torch.randn_like(true)
    first = torch.arange(len(true))[:, None] < 20
    state["positional_embedding"] = torch.where(first, true, noise)  # rows Long-CLIP masks out are junk
    state["positional_embedding_res"] = torch.where(first, noise, true)
    if with_masks:
        state["mask1"], state["mask2"] = first.float(), (~first).float()
        state = {"epoch": 1, "name": "farslip2", "state_dict": state}
    entry = {**ENTRY, "context_length": 32, "format": fmt, "weights": {"hf": {"repo": "o/r", "file": "long.pt"}}}
    spec = spec_of(tmp_path, "long", entry)
    placed(spec, state)
    model, _, tokenizer = load(spec)
    tokens = tokenizer(["a satellite photo of a forest with a long caption that runs past twenty tokens"])
    assert tokens.shape == (1, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_text(tokens), reference.encode_text(tokens))


def long_clip_model(rows: int = 32):
    """(a seeded random open_clip model of the tiny architecture with `rows` text positions, its
    state as FarSLIP's fork saves a Long-CLIP text tower: positional_embedding read for the first
    20 positions, positional_embedding_res after them (the rows each leaves to the other are
    junk), and the mask1/mask2 buffers that pick them)."""
    import open_clip

    from remoteclip.models.loaders import with_context_length

    torch.manual_seed(11)
    model = open_clip.create_model(with_context_length(TINY_ARCH, rows)).eval()
    state = dict(model.state_dict())
    true = state["positional_embedding"]
    junk = torch.randn_like(true)
    first = torch.arange(rows)[:, None] < 20
    state["positional_embedding"] = torch.where(first, true, junk)
    state["positional_embedding_res"] = torch.where(first, junk, true)
    state["mask1"], state["mask2"] = first.float(), (~first).float()
    return model, state


# FarSLIP's loader (its fork's open_clip factory.load_state_dict) takes ckpt["state_dict"] when
# there is one, else the file itself, and strips a "module." prefix: the release files may be
# either; its main.py saves {"epoch", "name", "state_dict" (unwrapped), "optimizer"}
FARSLIP_LAYOUTS = {
    "bare": lambda state: state,
    "training": lambda state: {"epoch": 10, "name": "farslip", "state_dict": state, "optimizer": {"state": {}}},
    "training-ddp": lambda state: {
        "epoch": 10,
        "name": "farslip",
        "state_dict": {f"module.{k}": v for k, v in state.items()},
    },
}
LONG_TEXT = ["a satellite photo of a harbor with many boats moored along the long piers, seen from above"]


def farslip_recipe(name: str) -> dict:
    """How the shipped zoo entry loads its file (format, text positions), for a tiny model."""
    from workflow_helpers import REPO

    shipped = load_zoo(REPO / "config" / "models.yaml")[name]
    recipe = {key: shipped[key] for key in ("format", "long_clip_positions") if key in shipped}
    return {**ENTRY, **recipe, "weights": {"hf": {"repo": "ZhenShiL/FarSLIP", "file": f"{name}.pt"}}}


@pytest.mark.parametrize("layout", sorted(FARSLIP_LAYOUTS))
def test_a_farslip1_long_clip_file_loads_as_its_readme_command_loads_it(layout, tmp_path, tiny_model_dir, caplog):
    """FarSLIP's README scores FarSLIP-s1 with `tests.test_scene_classification --pretrained
    FarSLIP1_$VIT.pt` and no --use-long-clip, although its table lists a LongCLIP text encoder
    for ViT-B-16: the fork builds the 77-position tower and its load_checkpoint(strict=False)
    interpolates the file's 248-row positional_embedding linearly to 77 rows
    (resize_text_pos_embed) and leaves positional_embedding_res, mask1 and mask2 unused. That is
    open_clip's own load_checkpoint, the reference here (32 rows to the tiny tower's 24)."""
    import open_clip

    _, state = long_clip_model(32)
    spec = spec_of(tmp_path, "FarSLIP1-ViT-B-16", farslip_recipe("FarSLIP1-ViT-B-16"))
    path = placed(spec, FARSLIP_LAYOUTS[layout](state))
    reference = open_clip.create_model(TINY_ARCH).eval()
    unused = open_clip.load_checkpoint(reference, str(path), strict=False)
    assert sorted(unused.unexpected_keys) == ["mask1", "mask2", "positional_embedding_res"]
    assert not unused.missing_keys
    with caplog.at_level("INFO", logger="remoteclip.models.loaders"):
        model, _, tokenizer = load(spec)
    tokens = tokenizer(LONG_TEXT)
    assert tokens.shape == (1, 24)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_text(tokens), reference.encode_text(tokens))
    # interpolated over all 32 rows: not the first 24 rows kept
    assert (model.positional_embedding - state["positional_embedding"][:24]).abs().max() > 0.1
    assert "dropped positional_embedding_res, mask1, mask2" in caplog.text
    assert "positional_embedding interpolated linearly from 32 to 24 rows" in caplog.text


@pytest.mark.parametrize("layout", sorted(FARSLIP_LAYOUTS))
def test_a_farslip2_file_loads_bare_or_as_a_training_checkpoint(layout, tmp_path, tiny_model_dir, caplog):
    """FarSLIP-s2 is scored with --use-long-clip: the Long-CLIP tower itself (its two position
    tables folded into one, as the existing fold test shows), whichever layout the file has."""
    reference, state = long_clip_model(32)
    spec = spec_of(tmp_path, "FarSLIP2-ViT-B-16", farslip_recipe("FarSLIP2-ViT-B-16") | {"context_length": 32})
    placed(spec, FARSLIP_LAYOUTS[layout](state))
    with caplog.at_level("INFO", logger="remoteclip.models.loaders"):
        model, _, tokenizer = load(spec)
    tokens = tokenizer(LONG_TEXT)
    assert tokens.shape == (1, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_text(tokens), reference.encode_text(tokens))
    assert "folded positional_embedding_res into positional_embedding" in caplog.text


def test_a_long_clip_file_for_a_shorter_tower_names_both_ways_to_load_it(tmp_path, tiny_model_dir):
    _, state = long_clip_model(32)
    entry = {**ENTRY, "format": "state_dict", "weights": {"hf": {"repo": "o/r", "file": "long.pt"}}}
    spec = spec_of(tmp_path, "long", entry)
    placed(spec, state)
    with pytest.raises(
        KeyMismatch,
        match=r"a Long-CLIP text tower with 32 positions .* builds 24: context_length: 32 .* "
        r"long_clip_positions: resize",
    ):
        load(spec)
    with pytest.raises(ValueError, match=r"long_clip_positions 'truncate': expected fold or resize"):
        load(spec | {"long_clip_positions": "truncate"})  # a spec not made from a validated zoo


def test_wrong_keys_name_the_missing_and_unexpected(tmp_path, tiny_clip, tiny_model_dir):
    state = dict(tiny_clip[0].state_dict())
    state["visual.projection"] = state.pop("visual.proj")
    spec = spec_of(
        tmp_path, "bad", {**ENTRY, "format": "state_dict", "weights": {"hf": {"repo": "o/r", "file": "x.pt"}}}
    )
    placed(spec, state)
    with pytest.raises(KeyMismatch, match=r"1 missing: visual\.proj; 1 unexpected: visual\.projection"):
        load(spec)


def test_a_tokenizer_with_more_tokens_than_the_text_tower_is_refused(tmp_path, tiny_model_dir):
    """A text tower with a 1,000-row table declared with the open_clip (49,408-token) tokenizer."""
    import open_clip

    from remoteclip.models.loaders import TokenizerMismatch

    small = json.loads(json.dumps(TINY_EVAL_VIT))
    small["text_cfg"]["vocab_size"] = 1000
    (tmp_path / "tiny-eval-ViT-v1000.json").write_text(json.dumps(small))
    open_clip.add_model_config(tmp_path / "tiny-eval-ViT-v1000.json")
    entry = {**ENTRY, "arch": "tiny-eval-ViT-v1000", "format": "state_dict"}
    spec = spec_of(tmp_path, "small-vocab", entry | {"weights": {"hf": {"repo": "o/r", "file": "x.pt"}}})
    placed(spec, open_clip.create_model("tiny-eval-ViT-v1000").state_dict())
    with pytest.raises(
        TokenizerMismatch, match=r"tokenizer \(open_clip\) has 49408 tokens, but the text tower embeds 1000"
    ):
        load(spec)


def test_a_plain_state_dict_declared_open_clip_train_is_refused(tmp_path, tiny_clip, tiny_model_dir):
    entry = {**ENTRY, "format": "open_clip_train", "weights": {"hf": {"repo": "o/r", "file": "x.pt"}}}
    spec = spec_of(tmp_path, "plain", entry)
    placed(spec, tiny_clip[0].state_dict())
    with pytest.raises(CheckpointError, match="not an open_clip_train checkpoint"):
        load(spec)


def test_an_itra_file_without_itra_keys_is_refused(tmp_path, tiny_clip, tiny_model_dir):
    spec = spec_of(tmp_path, "itra", {**ENTRY, "format": "itra", "weights": {"hf": {"repo": "o/r", "file": "x.pt"}}})
    placed(spec, {"epoch": 1, "state_dict": tiny_clip[0].state_dict()})
    with pytest.raises(KeyMismatch, match="not an ITRA checkpoint"):
        load(spec)


def test_missing_weights_say_where_they_belong(tmp_path, tiny_model_dir):
    spec = spec_of(
        tmp_path, "absent", {**ENTRY, "format": "state_dict", "weights": {"hf": {"repo": "o/r", "file": "x.pt"}}}
    )
    with pytest.raises(FileNotFoundError, match=r"weights .*x\.pt not found .*fetch_weights"):
        load(spec)


# ------------------------------------------------------------------ malformed zoo entries


@pytest.mark.parametrize(
    "change, message",
    [
        ({"family": "NoSuchCLIP"}, r"bad\.family: 'NoSuchCLIP' is not one of"),
        ({"format": "pickle"}, r"bad\.format: 'pickle' is not one of"),
        ({"weights": {}}, r"bad\.weights"),
        ({"weights": {"hf": {"repo": "not a repo"}}}, r"bad\.weights\.hf\.repo"),
        ({"arch": None}, r"bad\.arch: None is not of type 'string'"),
        ({"text_attention_mask": "yes"}, r"bad\.text_attention_mask: 'yes' is not of type 'boolean'"),
        ({"long_clip_positions": "truncate"}, r"bad\.long_clip_positions: 'truncate' is not one of"),
    ],
)
def test_a_malformed_entry_is_an_error_naming_it(tmp_path, change, message):
    entry = {**ENTRY, "format": "state_dict", "weights": {"hf": {"repo": "o/r", "file": "x.pt"}}, **change}
    with pytest.raises(ZooError, match=message):
        load_zoo(write_zoo(tmp_path, {"bad": entry}))


def test_a_missing_field_is_named(tmp_path):
    entry = {k: v for k, v in ENTRY.items() if k != "licence"}
    entry |= {"format": "state_dict", "weights": {"hf": {"repo": "o/r", "file": "x.pt"}}}
    with pytest.raises(ZooError, match=r"invalid model zoo .*models\.yaml:\n  bad.*'licence' is a required property"):
        load_zoo(write_zoo(tmp_path, {"bad": entry}))


def test_an_unknown_zoo_name_suggests_the_closest(tmp_path):
    zoo = write_zoo(tmp_path, {"GeoRSCLIP-ViT-B-32": {**ENTRY, "format": "openai_tag", "weights": {"tag": "openai"}}})
    with pytest.raises(ZooError, match=r"'GeoRSCLIP-ViT-B32' is not an entry .*did you mean 'GeoRSCLIP-ViT-B-32'"):
        resolve("m", {"zoo": "GeoRSCLIP-ViT-B32"}, config_for(tmp_path, zoo))


def test_the_shipped_zoo_is_valid_and_every_entry_resolves():
    from workflow_helpers import REPO

    zoo = load_zoo(REPO / "config" / "models.yaml")
    config = {"zoo": str(REPO / "config" / "models.yaml"), "data": {"weights": "data/weights"}}
    config["evaluation"] = {"leaderboard": {"models": None, "protocols": {"paper": ["a {}."], "ensemble": ["{}"]}}}
    models = leaderboard_models(config)
    assert sorted(models) == sorted(f"{n}.{p}" for n in zoo for p in ("paper", "ensemble"))
    for name, entry in models.items():
        spec = resolve(name, entry, config)
        assert eval_sources(spec), f"{name}: nothing to fetch"
        assert spec["templates"] == config["evaluation"]["leaderboard"]["protocols"][entry["protocol"]]


def test_docs_model_zoo_table_lists_every_entry_as_the_zoo_states_it():
    """docs/model-zoo.md's entries table is written by hand: every zoo entry has a row whose
    family, format and unverified fields are the entry's, and no row names a missing entry."""
    from workflow_helpers import REPO

    zoo = load_zoo(REPO / "config" / "models.yaml")
    text = (REPO / "docs" / "model-zoo.md").read_text()
    table = text[text.index("| entry | family |") :].split("\n\n")[0].splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    rows = {}
    for line in table[2:]:
        cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
        rows[cells["entry"]] = cells
    assert sorted(rows) == sorted(zoo)
    for name, model in zoo.items():
        row = rows[name]
        assert (row["family"], row["format"]) == (model["family"], model["format"]), name
        listed = set() if row["unverified"] == "—" else {f.strip() for f in row["unverified"].split(",")}
        assert listed == set(model["unverified"]), name


# ------------------------------------------------------------------ releases fetched from a Hub


def fetch_all(spec: dict, cache: Path, hub: HubServer, tmp_path: Path):
    from test_weights_cache import fetch_in_process

    for source in eval_sources(spec):
        proc = fetch_in_process(source, cache, tmp_path / "weights.lock.yaml", hub, tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]


def test_hf_hub_open_clip_release_is_fetched_then_loaded_offline(tmp_path, tiny_clip, cls_split, reference):
    from safetensors.torch import save

    repo = "test-org/tiny-hf-hub-clip"
    entry = {**ENTRY, "arch": None, "format": "hf_hub_open_clip", "weights": {"hf": {"repo": repo, "revision": "main"}}}
    spec = spec_of(tmp_path, "tiny-hub", entry)
    state = {k: v.contiguous() for k, v in tiny_clip[0].state_dict().items()}
    with HubServer() as hub:
        hub.add(repo, "open_clip_config.json", json.dumps({"model_cfg": TINY_EVAL_VIT, "preprocess_cfg": {}}).encode())
        hub.add(repo, "open_clip_model.safetensors", save(state))
        fetch_all(spec, tmp_path / "weights", hub, tmp_path)
    lock = yaml.safe_load((tmp_path / "weights.lock.yaml").read_text())["weights"]
    assert set(next(iter(lock.values()))) == {"open_clip_config.json", "open_clip_model.safetensors"}
    images, texts, _ = score(spec, cls_split)  # offline: the hub is gone
    np.testing.assert_allclose(images["features"], reference[0]["features"], atol=1e-5)
    np.testing.assert_allclose(texts["class_features"], reference[1]["class_features"], atol=1e-5)


SIGLIP_WORDS = ["<pad>", "</s>", "<unk>", "a", "satellite", "photo", "of", "airport", "beach", "forest"]
SIGLIP_WORDS += ["farmland", "harbor", "desert", "near", "."]
PREPROCESSOR = "preprocessor_config.json"  # the image processor's own file (Git-RSCLIP's Hub repos)
PROCESSOR = "processor_config.json"  # a processor's, image settings nested (transformers 5 saves so)


def tiny_transformers_repo(
    folder: Path, image_settings: str | None = PREPROCESSOR, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
) -> Path:
    """A seeded random tiny SigLIP saved by transformers itself, in the layout Git-RSCLIP is
    released in: config.json, model.safetensors, tokenizer files and the image processor's
    settings in preprocessor_config.json naming SiglipProcessor (AutoProcessor builds it);
    image_settings=PROCESSOR: nested in processor_config.json, as SiglipProcessor.save_pretrained
    of transformers 5 writes them; None: neither file. The tokenizer ends every text with </s>
    and pads with it, and returns input_ids and attention_mask, as SigLIP's does."""
    transformers = pytest.importorskip("transformers", reason="transformers is the optional zoo extra")
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    raw = Tokenizer(models.WordLevel({w: i for i, w in enumerate(SIGLIP_WORDS)}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token="</s>", eos_token="</s>", unk_token="<unk>", model_max_length=16
    )
    config = transformers.SiglipConfig(
        text_config={
            "vocab_size": len(SIGLIP_WORDS),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "pad_token_id": 1,
            "eos_token_id": 1,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
    )
    torch.manual_seed(0)
    model = transformers.SiglipModel(config).eval()
    model.save_pretrained(folder)
    images = transformers.SiglipImageProcessor(
        size={"height": 32, "width": 32}, image_mean=list(mean), image_std=list(std)
    )
    if image_settings == PROCESSOR:
        transformers.SiglipProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
        assert not (folder / PREPROCESSOR).exists()
        return folder
    tokenizer.save_pretrained(folder)
    if image_settings == PREPROCESSOR:
        images.save_pretrained(folder)
        settings = json.loads((folder / PREPROCESSOR).read_text())
        (folder / PREPROCESSOR).write_text(json.dumps(settings | {"processor_class": "SiglipProcessor"}))
    return folder


def test_transformers_release_is_fetched_then_scores_offline(tmp_path, cls_split):
    folder = tiny_transformers_repo(tmp_path / "release")
    repo = "test-org/tiny-siglip"
    entry = {
        **ENTRY,
        "family": "Git-RSCLIP",
        "arch": None,
        "format": "transformers",
        "model_class": "SiglipModel",
        "tokenizer": f"transformers:{repo}",
        "weights": {"hf": {"repo": repo, "revision": "0123456789abcdef0123456789abcdef01234567"}},
    }
    spec = spec_of(tmp_path, "tiny-siglip", entry)
    with HubServer() as hub:
        for path in folder.iterdir():
            hub.add(repo, path.name, path.read_bytes())
        fetch_all(spec, tmp_path / "weights", hub, tmp_path)
        assert not hub.downloads("pytorch_model.bin")  # found model.safetensors, asked no further
    assert (Path(spec["repo_dir"]) / "model.safetensors").is_file() and "@0123456789abcdef" in spec["repo_dir"]
    model, preprocess, tokenizer = load(spec)
    assert _embedding_rows(model) == len(tokenizer.tokenizer) == len(SIGLIP_WORDS)  # what check_tokenizer compared
    tokens = tokenizer(["a satellite photo of beach ."])["input_ids"]
    assert tokens.shape == (1, 16) and tokens[0, 1].item() == 4  # padded to the fixed length SigLIP uses
    readme, _ = readme_text_embeds(folder, ["a satellite photo of beach ."])
    with torch.no_grad():
        torch.testing.assert_close(encoded(model, tokenizer, ["a satellite photo of beach ."]), readme)
    images, texts, result = score(spec, cls_split)
    assert images["features"].shape[1] == 32 and texts["class_features"].shape == (len(cls_split["classes"]), 32)
    assert 0 <= result["metrics"]["acc1"] <= 100


def readme_text_embeds(folder: Path, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Git-RSCLIP's README (Chen-Yang-Liu/Git-RSCLIP, "zero-shot image classification"):
    AutoModel and AutoProcessor of the release, inputs = processor(text=texts, images=image,
    padding="max_length", return_tensors="pt"), model(**inputs): its (normalised) text_embeds;
    and the same model given the input ids alone, with no attention mask."""
    transformers = pytest.importorskip("transformers", reason="transformers is the optional zoo extra")
    from PIL import Image

    model = transformers.AutoModel.from_pretrained(folder).eval()
    processor = transformers.AutoProcessor.from_pretrained(folder)
    image = Image.new("RGB", (40, 48), (90, 140, 60))
    inputs = processor(text=texts, images=image, padding="max_length", return_tensors="pt")
    assert set(inputs) == {"input_ids", "attention_mask", "pixel_values"}  # the mask reaches the model
    with torch.no_grad():
        readme = model(**inputs).text_embeds
        ids_only = model(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"]).text_embeds
    return readme, ids_only


def encoded(model, tokenizer, texts: list[str]) -> torch.Tensor:
    """Normalised text embeddings the way the evaluation computes them (features.text_features)."""
    with torch.no_grad():
        return torch.nn.functional.normalize(model.encode_text(tokenizer(texts).to("cpu")), dim=-1)


def siglip_entry(**options) -> dict:
    repo = "test-org/tiny-siglip"
    weights = {"hf": {"repo": repo, "revision": "main"}}
    entry = {**ENTRY, "family": "Git-RSCLIP", "arch": None, "format": "transformers", "model_class": "SiglipModel"}
    return entry | {"tokenizer": f"transformers:{repo}", "weights": weights, **options}


def placed_releases(tmp_path: Path, folder: Path, entries: dict) -> dict:
    """Specs of zoo entries whose fetched repo is `folder`'s files (fetching is tested above)."""
    import shutil

    config = config_for(tmp_path, write_zoo(tmp_path, entries))
    specs = {name: resolve(name, {"zoo": name}, config) for name in entries}
    for spec in specs.values():
        shutil.copytree(folder, spec["repo_dir"], dirs_exist_ok=True)  # entries may share a repo
    return specs


GIT_RSCLIP_TEXTS = ["a satellite photo of beach .", "farmland", "a photo of a harbor near a desert ."]


def test_transformers_text_is_encoded_as_the_readme_calls_the_model(tmp_path):
    """Git-RSCLIP's README hands the model what its processor returns, the tokenizer's
    attention_mask with the ids: the shipped entries score so (text_attention_mask: true, the
    default), and `text_attention_mask: false` keeps the ids-only path as a named option. On this
    tiny SigLIP the two differ by 0.71 to 0.96 in normalised text embedding."""
    from workflow_helpers import REPO

    shipped = load_zoo(REPO / "config" / "models.yaml")
    assert shipped["Git-RSCLIP"]["text_attention_mask"] is shipped["Git-RSCLIP-base"]["text_attention_mask"] is True
    folder = tiny_transformers_repo(tmp_path / "release")
    readme, ids_only = readme_text_embeds(folder, GIT_RSCLIP_TEXTS)
    specs = placed_releases(
        tmp_path,
        folder,
        {"shipped": siglip_entry(text_attention_mask=True), "default": siglip_entry()}
        | {"ids-only": siglip_entry(text_attention_mask=False)},
    )
    for name, want in (("shipped", readme), ("default", readme), ("ids-only", ids_only)):
        model, _, tokenizer = load(specs[name])
        torch.testing.assert_close(encoded(model, tokenizer, GIT_RSCLIP_TEXTS), want, atol=1e-5, rtol=0)
    assert (readme - ids_only).norm(dim=-1).min() > 0.1  # the option is a different model, not a rounding


def test_image_settings_nested_in_processor_config_are_the_release_s_own(tmp_path):
    """transformers 5 saves a processor's image settings nested in processor_config.json and
    writes no preprocessor_config.json; AutoProcessor reads them from there, and so does the
    loader: the release's own mean, std and 32x32 squash (SigLIP crops no centre), not CLIP's."""
    transformers = pytest.importorskip("transformers", reason="transformers is the optional zoo extra")
    from PIL import Image

    mean, std = (0.3, 0.4, 0.5), (0.2, 0.25, 0.3)
    folder = tiny_transformers_repo(tmp_path / "release", PROCESSOR, mean, std)
    spec = placed_releases(tmp_path, folder, {"nested": siglip_entry()})["nested"]
    _, preprocess, _ = load(spec)
    processor = transformers.AutoProcessor.from_pretrained(folder)
    rng = np.random.default_rng(0)
    # an image at the model's size is only normalised; a 40x48 one is squashed, which PIL does
    # in 8 bits and the processor in float: up to a grey level (1/255/std) apart
    for (height, width), atol in (((32, 32), 1e-5), ((48, 40), 1.5 / 255 / min(std))):
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        want = processor(images=image, return_tensors="pt")["pixel_values"][0]
        torch.testing.assert_close(preprocess(image), want, atol=atol, rtol=0)


@pytest.mark.parametrize(
    "case, message",
    [
        (
            "neither file",
            r"release .*/test-org--tiny-siglip@main has neither preprocessor_config\.json nor processor_config\.json",
        ),
        ("another size", r"preprocessor_config\.json resizes images to 32x32 but the entry's image_size is 48"),
        ("no mean", r"preprocessor_config\.json states no image_mean"),
        ("crop after a larger resize", r"preprocessor_config\.json resizes to 40 and then crops 32: not reproduced"),
        ("oblong size", r"image size \{'height': 32, 'width': 48\} is not a square side"),
    ],
)
def test_a_release_without_its_image_settings_is_refused(case, message, tmp_path):
    """No release is scored with image settings it does not state (CLIP's mean and std were the
    silent fallback), nor with settings the open_clip transform would not reproduce."""
    folder = tiny_transformers_repo(tmp_path / "release", None if case == "neither file" else PREPROCESSOR)
    changes = {
        "no mean": {"image_mean": None},
        "crop after a larger resize": {"do_center_crop": True, "size": {"shortest_edge": 40}, "crop_size": 32},
        "oblong size": {"size": {"height": 32, "width": 48}},
    }.get(case)
    if changes:
        settings = json.loads((folder / PREPROCESSOR).read_text()) | changes
        (folder / PREPROCESSOR).write_text(json.dumps({k: v for k, v in settings.items() if v is not None}))
    entry = siglip_entry(image_size=48 if case == "another size" else 32)
    spec = placed_releases(tmp_path, folder, {"tiny": entry})["tiny"]
    from remoteclip.models.loaders import ImageSettingsError

    with pytest.raises(ImageSettingsError, match=message):
        load(spec)


def test_an_open_clip_release_with_a_transformers_text_tower_builds_offline(tmp_path, cls_split):
    """RS-M-CLIP's layout: an open_clip hf-hub: repo (open_clip_config.json + weights) whose
    text tower is a transformers model named by another Hub repo (xlm-roberta-base). open_clip
    asks that repo for its config.json and tokenizer when it builds the model; fetch_weights
    fetches them into the weights cache and the loader builds from there, with the Hub gone
    and HF_HUB_OFFLINE=1."""
    transformers = pytest.importorskip("transformers", reason="transformers is the optional zoo extra")
    import open_clip
    from safetensors.torch import save
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<s>", "<pad>", "</s>", "<unk>", "a", "satellite", "photo", "of", "airport", "beach", "forest"]
    words += ["farmland", "harbor", "desert", "."]
    raw = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tower_dir = tmp_path / "tower"
    transformers.PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(tower_dir)
    transformers.XLMRobertaConfig(
        vocab_size=len(words),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=40,
        pad_token_id=1,
    ).save_pretrained(tower_dir)
    tower_repo, repo = "test-org/tiny-xlm-roberta", "test-org/tiny-rs-m-clip"
    text_cfg = {"hf_model_name": tower_repo, "hf_tokenizer_name": tower_repo, "hf_proj_type": "mlp"}
    text_cfg |= {"hf_pooler_type": "mean_pooler", "context_length": 16}
    released_cfg = {"model_cfg": {**TINY_EVAL_VIT, "text_cfg": text_cfg}, "preprocess_cfg": {}}
    # the reference: the same architecture built from the tower's local folder, seeded
    local_cfg = json.loads(json.dumps(released_cfg))
    local_cfg["model_cfg"]["text_cfg"] |= {"hf_model_name": str(tower_dir), "hf_tokenizer_name": str(tower_dir)}
    build_dir = tmp_path / "build"
    build_dir.mkdir()
    (build_dir / "open_clip_config.json").write_text(json.dumps(local_cfg))
    torch.manual_seed(3)
    reference = open_clip.create_model(f"local-dir:{build_dir}", load_weights=False, pretrained_text=False).eval()
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}

    entry = {**ENTRY, "family": "RS-M-CLIP", "arch": None, "format": "hf_hub_open_clip"}
    entry |= {"tokenizer": f"hf-hub:{repo}", "weights": {"hf": {"repo": repo, "revision": "main"}}}
    spec = spec_of(tmp_path, "tiny-rs-m-clip", entry)
    with HubServer() as hub:
        hub.add(repo, "open_clip_config.json", json.dumps(released_cfg).encode())
        hub.add(repo, "open_clip_model.safetensors", save(state))
        for path in tower_dir.iterdir():
            hub.add(tower_repo, path.name, path.read_bytes())
        fetch_all(spec, tmp_path / "weights", hub, tmp_path)
        assert not hub.downloads("model.safetensors")[1:], "only the release's weights are fetched"
    tower_cache = tmp_path / "weights" / "hf" / "test-org--tiny-xlm-roberta@main"
    assert (tower_cache / "config.json").is_file() and (tower_cache / "tokenizer.json").is_file()
    lock = yaml.safe_load((tmp_path / "weights.lock.yaml").read_text())["weights"]
    assert any("tiny-xlm-roberta" in key and "config.json" in files for key, files in lock.items())

    model, _, tokenizer = load(spec)  # the Hub is gone
    assert _embedding_rows(model) == len(words)  # what check_tokenizer compared
    tokens = tokenizer(["a satellite photo of beach ."])
    assert tokens.shape == (1, 16) and tokens[0, 1].item() == words.index("satellite")
    with torch.no_grad():
        torch.testing.assert_close(model.encode_text(tokens), reference.encode_text(tokens))
    images, texts, result = score(spec, cls_split)
    assert texts["class_features"].shape[0] == len(cls_split["classes"]) and 0 <= result["metrics"]["acc1"] <= 100
