"""The losses of Table V's loss ablation (train.loss): each one against its formula worked out
by hand on three pairs, accumulation against the full batch for each, the model's logit
parameters per loss, the recipe fingerprint, and bad input; two ranks against one process for
each (one torchrun launch). Whole training runs are compared for InfoNCE in test_train.py."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import open_clip
import pytest
import torch

from conftest import SCHEMA
from remoteclip.config import ConfigError, validate
from remoteclip.models import create, export, register_model_configs
from remoteclip.train import checkpoints, losses
from remoteclip.train.loop import load_model_state
from remoteclip.train.settings import LOSSES, ModelSettings, TrainSettings, fingerprint
from train_helpers import REPO, step_gradients, tiny_model_dir

OPTIONS = TrainSettings(steps=1).loss_options

# three pairs of unit vectors in the plane: image i at angle a_i, caption j at angle b_j, so the
# cosine similarity is s_ij = cos(a_i - b_j); pair 1's caption is closer to image 2 than image 1's
IMAGE_ANGLES, TEXT_ANGLES = [0.0, 1.0, 2.5], [0.2, 1.9, 2.0]


def unit(angles):
    return torch.tensor([[math.cos(a), math.sin(a)] for a in angles], dtype=torch.float64)


def sim(i, j):
    return math.cos(IMAGE_ANGLES[i] - TEXT_ANGLES[j])


N = len(IMAGE_ANGLES)
PAIRS = range(N)


def call(name, scale=1.0, bias=None, options=OPTIONS):
    loss = losses.build(name, options)
    args = [unit(IMAGE_ANGLES), unit(TEXT_ANGLES), torch.tensor(scale, dtype=torch.float64)]
    return float(loss(*args, *([torch.tensor(bias, dtype=torch.float64)] if bias is not None else [])))


def test_infonce_is_the_symmetric_cross_entropy_at_the_temperature():
    t = 2.0
    image_to_text = [-math.log(math.exp(t * sim(i, i)) / sum(math.exp(t * sim(i, j)) for j in PAIRS)) for i in PAIRS]
    text_to_image = [-math.log(math.exp(t * sim(j, j)) / sum(math.exp(t * sim(i, j)) for i in PAIRS)) for j in PAIRS]
    expected = (sum(image_to_text) / N + sum(text_to_image) / N) / 2
    assert call("infonce", scale=t) == pytest.approx(expected, rel=1e-12)


def test_siglip_is_the_pairwise_sigmoid_loss_with_temperature_and_bias():
    t, b = 3.0, -1.0

    def log_sigmoid(x):
        return -math.log(1 + math.exp(-x))

    expected = -sum(log_sigmoid((1 if i == j else -1) * (t * sim(i, j) + b)) for i in PAIRS for j in PAIRS) / N
    assert call("siglip", scale=t, bias=b) == pytest.approx(expected, rel=1e-12)


def hinges(margin):
    """[(image i's hinge on caption j, caption i's hinge on image j) for j != i] per pair i."""
    return [
        [(max(0.0, margin - sim(i, i) + sim(i, j)), max(0.0, margin - sim(i, i) + sim(j, i))) for j in PAIRS if j != i]
        for i in PAIRS
    ]


@pytest.mark.parametrize("negatives", ["hardest", "all"])
def test_margin_ranking_is_the_bidirectional_hinge(negatives):
    margin = 0.3
    per_pair = hinges(margin)
    assert any(c == 0 for row in per_pair for pair in row for c in pair), "some hinge should be inactive"
    if negatives == "hardest":
        expected = sum(max(c for c, _ in row) + max(m for _, m in row) for row in per_pair) / N
    else:
        expected = sum(c + m for row in per_pair for c, m in row) / N
    options = {**OPTIONS, "margin_ranking": {**OPTIONS["margin_ranking"], "margin": margin, "negatives": negatives}}
    # the temperature is not part of it
    assert call("margin_ranking", scale=50.0, options=options) == pytest.approx(expected, rel=1e-12)
    assert call("margin_ranking", scale=1.0, options=options) == pytest.approx(expected, rel=1e-12)


def margin_options(**given):
    return {**OPTIONS, "margin_ranking": {**OPTIONS["margin_ranking"], "margin": 0.3, **given}}


def test_hardest_and_all_negatives_differ_on_this_batch():
    hardest = call("margin_ranking", options=margin_options(negatives="hardest"))
    every = call("margin_ranking", options=margin_options(negatives="all"))
    assert every > hardest > 0


def test_all_negatives_first_then_the_hardest_from_the_given_step():
    """all_negatives_steps: the sum over all negatives for the first steps (VSE-infinity's
    warm-up), VSE++'s hardest negative from then on; the loop announces each step."""
    loss = losses.build("margin_ranking", margin_options(negatives="hardest", all_negatives_steps=3))
    args = [unit(IMAGE_ANGLES), unit(TEXT_ANGLES), torch.tensor(1.0, dtype=torch.float64)]
    values = []
    for step in range(5):
        losses.at_step(loss, step)
        values.append(float(loss(*args)))
    every = call("margin_ranking", options=margin_options(negatives="all"))
    hardest = call("margin_ranking", options=margin_options(negatives="hardest"))
    assert values == pytest.approx([every] * 3 + [hardest] * 2, rel=1e-12)


def test_npair_is_sohns_multiclass_loss_on_inner_products():
    expected = sum(math.log(1 + sum(math.exp(sim(i, j) - sim(i, i)) for j in PAIRS if j != i)) for i in PAIRS) / N
    assert call("npair", scale=30.0) == pytest.approx(expected, rel=1e-12)


def test_barlow_twins_is_the_cross_correlation_loss_between_the_modalities():
    image = [[1.0, 0.5], [-0.3, 2.0], [0.4, -1.2]]
    text = [[0.8, 0.1], [0.2, 1.5], [-0.6, -0.9]]
    lambd, eps, dims = 0.25, 1e-5, 2

    def standardised(z, k):
        column = [row[k] for row in z]
        mean = sum(column) / len(column)
        var = sum((x - mean) ** 2 for x in column) / len(column)
        return [(x - mean) / math.sqrt(var + eps) for x in column]

    zi = [standardised(image, k) for k in range(dims)]
    zt = [standardised(text, k) for k in range(dims)]
    c = [[sum(zi[k][n] * zt[m][n] for n in range(3)) / 3 for m in range(dims)] for k in range(dims)]
    expected = sum((1 - c[k][k]) ** 2 for k in range(dims)) + lambd * sum(
        c[k][m] ** 2 for k in range(dims) for m in range(dims) if k != m
    )
    loss = losses.build("barlow_twins", {**OPTIONS, "barlow_twins": {"lambd": lambd}})
    got = loss(torch.tensor(image, dtype=torch.float64), torch.tensor(text, dtype=torch.float64), torch.tensor(1.0))
    assert float(got) == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------- precision: float32 under autocast


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_is_computed_in_float32_under_bf16_autocast(name):
    """The loop calls the loss inside the model's autocast region; the loss's own products must
    not run in bf16: its value equals the float64 value of the same features within 1e-5."""
    generator = torch.Generator().manual_seed(0)
    image = torch.nn.functional.normalize(torch.randn(32, 64, generator=generator), dim=-1)
    text = torch.nn.functional.normalize(image + 0.5 * torch.randn(32, 64, generator=generator), dim=-1)
    logit_params = {"infonce": [100.0], "siglip": [10.0, -10.0]}.get(name, [1.0])
    loss = losses.build(name, OPTIONS)
    exact = loss(image.double(), text.double(), *(torch.tensor(p, dtype=torch.float64) for p in logit_params))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss(image, text, *(torch.tensor(p) for p in logit_params))
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(float(exact), rel=1e-5)


# ------------------------------------------------ accumulation: the same gradient as one batch


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    register_model_configs(tiny_model_dir(tmp_path_factory.mktemp("losses")))
    torch.manual_seed(0)
    images = torch.randn(8, 3, 32, 32)
    texts = open_clip.get_tokenizer("tiny-test-ViT")([f"a photo of scene {i} with {i % 3} planes" for i in range(8)])
    return images, texts


@pytest.mark.parametrize("loss_name", LOSSES)
def test_feature_cached_accumulation_gives_the_full_batch_gradient(tiny, loss_name):
    full_loss, full = step_gradients(loss_name, *tiny)
    acc_loss, acc = step_gradients(loss_name, *tiny, accum=4)
    assert acc_loss == pytest.approx(full_loss, rel=1e-5)
    assert full.keys() == acc.keys()
    assert ("logit_scale" in full) == (loss_name in losses.WITH_TEMPERATURE)
    for name in full:
        scale = float(full[name].abs().max()) + 1e-12
        assert float((full[name] - acc[name]).abs().max()) <= 1e-4 * scale, name  # logit_scale counted once


# ------------------------------------------ two ranks: the same gradient as one process


def test_two_ranks_give_one_process_gradient_for_every_loss(tmp_path):
    """For every loss, in one torchrun launch of two gloo processes (tests/ddp_loss_worker.py):
    the loop's step on each rank's half of the batch, DDP averaging, equals one process's
    gradient for the whole batch, and so does each rank's half in two accumulation steps. tests/test_train.py checks the same through whole training
    runs for InfoNCE."""
    models = tiny_model_dir(tmp_path)
    out = tmp_path / "gradients.json"
    worker = Path(__file__).with_name("ddp_loss_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*cmd, str(models), str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert sorted(result) == sorted(LOSSES)
    for name, r in result.items():
        assert r["same_parameters"], name
        # float64 (the worker's PRECISION): exact but for summation order; an ungathered loss is off by 0.5-1.8
        assert r["relative_difference"] <= 1e-9, (name, r)
        assert r["relative_difference_accumulated"] <= 1e-9, (name, r)
        if name != "siglip":  # SigLIP's rank scores only its own images (against every caption)
            assert r["loss_rank0"] == pytest.approx(r["loss_one_process"], rel=1e-5), (name, r)


# ------------------------------------------------------------- the model's logit parameters


def test_siglip_gets_a_bias_and_its_starting_temperature_and_exports_without_the_bias(tiny, tmp_path):
    model, _, _ = create("tiny-test-ViT", None)
    added = losses.prepare_model(model, "siglip", OPTIONS)
    assert added == ("logit_bias",)
    assert float(model.logit_bias) == OPTIONS["siglip"]["init_logit_bias"]
    assert float(model.logit_scale.exp()) == pytest.approx(OPTIONS["siglip"]["init_logit_scale"])
    assert len(model(*tiny)) == 4  # the bias is passed to the loss
    path = export(model, tmp_path / "m.pt", "tiny-test-ViT", exclude=added)
    fresh, _, _ = create("tiny-test-ViT", str(path))  # loads strictly into the plain architecture
    assert torch.equal(fresh.logit_scale, model.logit_scale)


def test_siglip_options_null_keep_the_models_temperature():
    model, _, _ = create("tiny-test-ViT", None)
    before = float(model.logit_scale)
    losses.prepare_model(model, "siglip", {**OPTIONS, "siglip": {"init_logit_scale": None, "init_logit_bias": None}})
    assert float(model.logit_scale) == before and float(model.logit_bias) == 0.0


@pytest.mark.parametrize("loss_name", ["margin_ranking", "npair", "barlow_twins"])
def test_losses_without_a_temperature_freeze_the_logit_scale(loss_name):
    model, _, _ = create("tiny-test-ViT", None)
    assert losses.prepare_model(model, loss_name, OPTIONS) == ()
    assert not model.logit_scale.requires_grad and getattr(model, "logit_bias", None) is None


def test_infonce_leaves_the_model_as_it_is():
    model, _, _ = create("tiny-test-ViT", None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert losses.prepare_model(model, "infonce", OPTIONS) == ()
    assert all(p.requires_grad for p in model.parameters())
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_a_resume_checkpoint_without_the_siglip_bias_is_refused(tmp_path):
    model, _, _ = create("tiny-test-ViT", None)
    plain = {k: v.clone() for k, v in model.state_dict().items()}  # an InfoNCE model's state
    losses.prepare_model(model, "siglip", OPTIONS)
    with pytest.raises(checkpoints.CheckpointMismatch, match=r"has no logit_bias, which train.loss 'siglip' learns"):
        load_model_state(model, plain, "siglip", tmp_path)
    load_model_state(model, {**plain, "logit_bias": torch.tensor(-3.0)}, "siglip", tmp_path)
    assert float(model.logit_bias) == -3.0


# ------------------------------------------------------------ recipe and configuration


def test_the_loss_and_its_own_options_are_part_of_the_recipe():
    model, shards = ModelSettings(), ["sha"]

    def print_(**train):
        return fingerprint(model, TrainSettings(steps=1, **train), shards)

    infonce = print_()
    assert print_(loss="siglip") != infonce
    assert print_(loss="margin_ranking") != print_(loss="npair")
    assert print_(loss="margin_ranking", loss_options={"margin_ranking": {"negatives": "all"}}) != print_(
        loss="margin_ranking"
    )
    # another loss's options do not change a run's trajectory, nor InfoNCE's
    assert print_(loss="npair", loss_options={"margin_ranking": {"margin": 0.5}}) == print_(loss="npair")
    assert print_(loss_options={"siglip": {"init_logit_bias": 0.0}}) == infonce


def test_partial_loss_options_are_filled_from_the_schema():
    s = TrainSettings(steps=1, loss="margin_ranking", loss_options={"margin_ranking": {"margin": 0.1}})
    assert s.loss_options["margin_ranking"] == {**OPTIONS["margin_ranking"], "margin": 0.1}
    assert OPTIONS["margin_ranking"]["margin"] != 0.1
    assert s.loss_options["siglip"] == OPTIONS["siglip"]


def test_unknown_loss_and_options_are_named():
    with pytest.raises(ValueError, match=r"unknown loss 'triplet'; known: infonce, siglip, margin_ranking"):
        TrainSettings(steps=1, loss="triplet")
    with pytest.raises(ValueError, match=r"loss_options.margin_ranking: unknown option\(s\) margn; known: margin"):
        TrainSettings(steps=1, loss_options={"margin_ranking": {"margn": 0.1}})
    with pytest.raises(ValueError, match=r"'npair' has no options"):
        TrainSettings(steps=1, loss_options={"npair": {}})
    with pytest.raises(ValueError, match="unknown loss 'triplet'"):
        losses.build("triplet", OPTIONS)


def test_the_schema_rejects_an_unknown_loss_with_the_known_names():
    with pytest.raises(ConfigError) as err:
        validate({"runs": {"r": {"sources": ["@RET"], "train": {"loss": "triplet"}}}}, SCHEMA)
    assert "runs.r.train.loss: 'triplet' is not one of ['infonce', 'siglip', 'margin_ranking'" in str(err.value)
    with pytest.raises(ConfigError, match=r"runs.r.train.loss_options.margin_ranking.negatives: 'some' is not one of"):
        validate(
            {
                "runs": {
                    "r": {"sources": ["@RET"], "train": {"loss_options": {"margin_ranking": {"negatives": "some"}}}}
                }
            },
            SCHEMA,
        )
    config = validate({"runs": {"r": {"sources": ["@RET"], "train": {"loss": "siglip"}}}}, SCHEMA)
    assert config["runs"]["r"]["train"]["loss_options"]["siglip"] == OPTIONS["siglip"]
