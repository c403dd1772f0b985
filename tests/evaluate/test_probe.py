import dataclasses

import numpy as np
import pytest
import scipy.optimize
import torch

from remoteclip.evaluate import logreg
from remoteclip.evaluate.probe import (
    PAPER_SELECTION,
    fit_logreg,
    linear_probe,
    paper_search_draws,
    predict,
    stratified_split,
)

GRID = (1e-4, 1e-2, 1.0, 100.0)


def blobs(n_train=120, n_test=60, n_classes=3, spread=0.3, seed=0, dims=6):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_classes, dims))
    y, yt = np.arange(n_train) % n_classes, np.arange(n_test) % n_classes
    return (
        centers[y] + spread * rng.normal(size=(n_train, dims)),
        y,
        centers[yt] + spread * rng.normal(size=(n_test, dims)),
        yt,
        n_classes,
    )


def test_validated_probe_learns_a_separable_problem():
    result = linear_probe(*blobs(), weight_decays=GRID, max_iter=200)
    assert result["metrics"] == {"acc1": 100.0, "acc5": 100.0, "mean_per_class_recall": 100.0}
    protocol = result["protocol"]
    assert protocol["name"] == "validated"
    assert "validation part of the train split" in protocol["selection"]
    assert [row["weight_decay"] for row in protocol["search"]["grid"]] == sorted(GRID, reverse=True)
    assert protocol["search"]["n_fit"] + protocol["search"]["n_val"] == 120
    assert protocol["weight_decay"] in GRID
    assert protocol["search"]["grid_edge"] == (protocol["weight_decay"] in (min(GRID), max(GRID)))


def test_validated_selection_never_reads_the_test_split():
    train_x, train_y, test_x, test_y, n = blobs(n_train=150, spread=1.5, seed=3)
    first = linear_probe(train_x, train_y, test_x, test_y, n, weight_decays=GRID, max_iter=200)
    rng = np.random.default_rng(0)
    other = linear_probe(
        train_x, train_y, rng.normal(size=test_x.shape), rng.permutation(test_y), n, weight_decays=GRID, max_iter=200
    )
    accuracies = [row["val_acc1"] for row in first["protocol"]["search"]["grid"]]
    assert len(set(accuracies)) > 1  # the choice is not trivial
    assert other["protocol"]["weight_decay"] == first["protocol"]["weight_decay"]
    assert other["protocol"]["search"] == first["protocol"]["search"]


def test_validated_probe_is_deterministic_for_a_seed():
    data = blobs(spread=1.5, seed=4)
    a, b = (linear_probe(*data, seed=7, weight_decays=GRID, max_iter=100) for _ in range(2))
    assert a == b


def test_grid_may_be_a_numpy_array_but_not_empty():
    result = linear_probe(*blobs(), weight_decays=np.array([1e-2, 1.0]), max_iter=50)
    assert result["protocol"]["weight_decay"] in (1e-2, 1.0)
    with pytest.raises(ValueError, match="empty grid"):
        linear_probe(*blobs(), weight_decays=())


def test_fixed_weight_decay_skips_the_search():
    result = linear_probe(*blobs(), weight_decay=0.01, max_iter=100)
    assert "search" not in result["protocol"]
    assert result["protocol"]["weight_decay"] == 0.01
    assert result["protocol"]["selection"].startswith("none: weight decay fixed by the caller")


def test_too_few_samples_to_validate_raises():
    x, y = np.eye(3), np.array([0, 1, 2])
    with pytest.raises(ValueError, match="pass weight_decay"):
        linear_probe(x, y, x, y, 3)


def test_stratified_split_holds_out_a_fraction_of_every_class():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 1 + [3] * 2)
    fit, val = stratified_split(labels, 0.2, seed=0)
    assert np.bincount(labels[val], minlength=4).tolist() == [2, 1, 0, 0]  # round(0.4) = 0 for 2 samples
    assert sorted(np.concatenate([fit, val]).tolist()) == list(range(labels.size))
    assert stratified_split(labels, 0.2, 0)[1].tolist() == val.tolist()
    with pytest.raises(ValueError, match="fraction"):
        stratified_split(labels, 1.0, 0)


@pytest.mark.parametrize("dtype, precision", [(torch.float64, 1e-8), (torch.float32, 1e-5)])
def test_lbfgs_reaches_the_optimum_of_the_regularised_loss(dtype, precision):
    x, y, _, _, n = blobs(n_train=60, spread=1.0, dims=3)
    x = x + 4.0  # features that share a large offset, as CLIP's do
    wd = 0.05
    model = fit_logreg(x, y, n, wd, max_iter=500, dtype=dtype)

    def loss(params):
        w, b = params[: n * 3].reshape(n, 3), params[n * 3 :]
        z = x @ w.T + b
        z -= z.max(axis=1, keepdims=True)
        ce = -(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean()
        return ce + 0.5 * wd * (w**2).sum()

    reference = scipy.optimize.minimize(loss, np.zeros(n * 4), method="BFGS", options={"gtol": 1e-9})
    ours = loss(np.concatenate([model.weight.ravel(), model.bias]))
    assert ours == pytest.approx(reference.fun, abs=precision)
    assert model.info["loss"] == pytest.approx(ours, abs=precision)
    assert model.info["converged"] and not model.info["hit_max_iter"]
    assert predict(model, x).shape == (60, n)


def test_every_fit_along_the_grid_is_the_optimum_a_fit_from_zeros_reaches():
    x, y, _, _, n = blobs(n_train=150, spread=1.5, seed=2, dims=8)
    data = logreg.Data(x + 2.0, y, n, torch.float64, torch.device("cpu"))
    grid = (1.0, 1e-1, 1e-2, 1e-3, 1e-4)
    along, alone = 0, 0
    for wd, optimum in logreg.path(data, grid, tol=1e-12):
        cold = logreg.fit(data, wd, tol=1e-12)
        assert optimum.info["loss"] == pytest.approx(cold.info["loss"], rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(optimum.theta[:, :-1], cold.theta[:, :-1], atol=1e-4)
        along, alone = along + optimum.info["passes"], alone + cold.info["passes"]
    assert along < alone  # what starting from the previous optimum is for


def test_the_curvature_carried_along_the_grid_changes_the_iterations_not_the_optimum():
    x, y, _, _, n = blobs(n_train=400, n_classes=6, spread=1.5, seed=4, dims=24)
    data = logreg.Data(x, y, n, torch.float64, torch.device("cpu"))
    grid = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
    carried, fresh, previous = 0, 0, None
    for wd, optimum in logreg.path(data, grid, tol=1e-12):
        if previous is not None:  # the same start without the predecessor's curvature pairs
            alone = logreg.fit(
                data, wd, dataclasses.replace(previous[1], memory=None), from_weight_decay=previous[0], tol=1e-12
            )
            # equal to the float64 floor of the stopping rules (a decrease below 1e-9 of the loss)
            assert optimum.info["loss"] == pytest.approx(alone.info["loss"], rel=1e-8)
            np.testing.assert_allclose(optimum.theta[:, :-1], alone.theta[:, :-1], atol=1e-3)
            assert torch.equal(data.logits(optimum.theta).argmax(0), data.logits(alone.theta).argmax(0))
            carried, fresh = carried + optimum.info["iterations"], fresh + alone.info["iterations"]
        previous = (wd, optimum)
    assert carried < fresh


def test_the_refit_on_the_whole_train_split_reaches_the_optimum_of_a_fit_from_zeros():
    # the refit starts from the fit part's optimum and borrows its covariance eigenbasis
    x, y, xt, yt, n = blobs(n_train=150, spread=1.5, seed=3, dims=8)
    result = linear_probe(x, y, xt, yt, n, weight_decays=GRID, dtype="float64", tol=1e-12)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)  # what the validated protocol trains on
    data = logreg.Data(unit, y, n, torch.float64, torch.device("cpu"))
    cold = logreg.fit(data, result["protocol"]["weight_decay"], tol=1e-12)
    assert result["protocol"]["fit"]["converged"]
    assert result["protocol"]["fit"]["loss"] == pytest.approx(cold.info["loss"], rel=1e-9)


def test_float32_grid_selects_the_weight_decay_float64_selects():
    data = blobs(n_train=300, n_test=150, n_classes=5, spread=1.6, seed=6, dims=16)
    ours, reference = (linear_probe(*data, weight_decays=GRID, dtype=d) for d in ("float32", "float64"))
    grid = [row["val_acc1"] for row in ours["protocol"]["search"]["grid"]]
    assert len(set(grid)) > 1  # the choice is not trivial
    assert grid == [row["val_acc1"] for row in reference["protocol"]["search"]["grid"]]
    assert ours["protocol"]["weight_decay"] == reference["protocol"]["weight_decay"]
    assert ours["metrics"] == reference["metrics"]
    assert "float32" in ours["protocol"]["classifier"] and "float64" in reference["protocol"]["classifier"]


def test_the_probe_says_where_it_ran():
    result = linear_probe(*blobs(), weight_decay=0.01, device="cpu")
    assert result["protocol"]["device"] == "cpu"
    auto = linear_probe(*blobs(), weight_decay=0.01)["protocol"]["device"]
    assert auto == ("cuda" if torch.cuda.is_available() else "cpu")


def test_a_fit_stopped_by_max_iter_says_so():
    x, y, _, _, n = blobs(spread=2.0, seed=5)
    model = fit_logreg(x, y, n, 1e-7, max_iter=2)
    assert model.info["iterations"] == 2
    assert model.info["hit_max_iter"] and not model.info["converged"]


def test_sgd_is_deterministic_for_a_seed_and_calls_back_each_epoch():
    x, y, _, _, n = blobs()
    epochs = []
    a = fit_logreg(
        x, y, n, 1e-4, method="sgd", lr=0.1, epochs=3, batch_size=50, seed=1, on_epoch=lambda e, m: epochs.append(e)
    )
    b = fit_logreg(x, y, n, 1e-4, method="sgd", lr=0.1, epochs=3, batch_size=50, seed=1)
    c = fit_logreg(x, y, n, 1e-4, method="sgd", lr=0.1, epochs=3, batch_size=50, seed=2)
    assert epochs == [0, 1, 2]
    np.testing.assert_array_equal(a.weight, b.weight)
    assert not np.array_equal(a.weight, c.weight)
    assert a.weight.dtype == np.float64  # float32 training, float64 results


def test_paper_protocol_learns_and_says_it_selects_on_test():
    result = linear_probe(*blobs(), protocol="paper", epochs=15, batch_size=64)
    assert result["metrics"]["acc1"] == 100.0
    protocol = result["protocol"]
    assert protocol["selection"] == PAPER_SELECTION
    assert "test" in protocol["selection"] and "optimistic" in protocol["selection"]
    assert "TEST" in protocol["warning"]
    assert len(protocol["trials"]) == 6  # the paper's default + 5 random draws
    assert (protocol["trials"][0]["lr"], protocol["trials"][0]["weight_decay"]) == (0.8, 4e-5)
    assert (protocol["epochs"], protocol["batch_size"], protocol["momentum"]) == (15, 64, 0.9)


def test_paper_protocol_keeps_the_best_test_accuracy_over_trials_and_epochs():
    train_x, train_y, test_x, test_y, n = blobs(spread=2.0, seed=5)
    result = linear_probe(train_x, train_y, test_x, test_y, n, protocol="paper", epochs=8, batch_size=40)
    trials = result["protocol"]["trials"]
    assert result["metrics"]["acc1"] == max(t["acc1"] for t in trials)
    best = max(trials, key=lambda t: t["acc1"])
    assert (result["protocol"]["lr"], result["protocol"]["best_epoch"]) == (best["lr"], best["epoch"])
    # selecting on test labels: permuting them changes what is reported
    permuted = linear_probe(
        train_x,
        train_y,
        test_x,
        np.random.default_rng(0).permutation(test_y),
        n,
        protocol="paper",
        epochs=8,
        batch_size=40,
    )
    assert permuted["protocol"]["trials"] != trials


def test_paper_search_draws_follow_itra():
    lrs = {round(m * 10.0**-e, 12) for e in (1, 2) for m in range(1, 9)}
    wds = {round(m * 10.0**-e, 15) for e in range(5, 10) for m in range(1, 9)}
    draws = paper_search_draws(200, seed=0)
    assert {round(lr, 12) for lr, _ in draws} <= lrs
    assert {round(wd, 15) for _, wd in draws} <= wds
    assert len({lr for lr, _ in draws}) > 10  # the draws do cover the range
    assert paper_search_draws(5, 3) == paper_search_draws(5, 3) != paper_search_draws(5, 4)


def test_a_class_without_test_samples_is_left_out_of_mean_per_class_recall():
    train_x, train_y, test_x, test_y, n = blobs()
    keep = test_y != 2
    result = linear_probe(train_x, train_y, test_x[keep], test_y[keep], n, weight_decay=0.01, max_iter=100)
    assert result["metrics"]["mean_per_class_recall"] == 100.0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"protocol": "magic"}, "unknown linear-probe protocol"),
        ({"test_x": np.ones((4, 5))}, "dimensions"),
        ({"train_y": np.zeros(3, int)}, "3 labels for 120 rows"),
        ({"test_y": np.full(60, 3)}, "outside"),
        ({"train_x": np.zeros((0, 6))}, "empty"),
    ],
)
def test_linear_probe_rejects_bad_input(change, message):
    train_x, train_y, test_x, test_y, n = blobs()
    args = {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y, "n_classes": n} | change
    with pytest.raises(ValueError, match=message):
        linear_probe(**args)


def test_options_of_the_other_protocol_are_named_in_the_error():
    with pytest.raises(ValueError, match=r"\['epochs'\] do not apply to the 'validated' protocol"):
        linear_probe(*blobs(), epochs=10)
    with pytest.raises(ValueError, match=r"\['weight_decays'\] do not apply to the 'paper' protocol"):
        linear_probe(*blobs(), protocol="paper", weight_decays=GRID)
    with pytest.raises(ValueError, match="dtype must be one of"):
        linear_probe(*blobs(), dtype="float16")


def test_fit_logreg_rejects_bad_options():
    x, y = np.eye(2), np.array([0, 1])
    with pytest.raises(ValueError, match="unknown method"):
        fit_logreg(x, y, 2, 0.1, method="adam")
    with pytest.raises(ValueError, match="weight_decay"):
        fit_logreg(x, y, 2, -1.0)
    with pytest.raises(ValueError, match="epochs"):
        fit_logreg(x, y, 2, 0.1, method="sgd", epochs=0)
    with pytest.raises(ValueError, match="dimensions"):
        predict(fit_logreg(x, y, 2, 0.1), np.ones((1, 3)))


def test_accepts_torch_tensors():
    train_x, train_y, test_x, test_y, n = blobs()
    result = linear_probe(
        torch.tensor(train_x, dtype=torch.float16),
        torch.tensor(train_y),
        torch.tensor(test_x),
        torch.tensor(test_y),
        n,
        weight_decay=0.01,
        max_iter=100,
    )
    assert result["metrics"]["acc1"] == 100.0


def test_results_are_json_ready():
    import json

    for protocol, options in (
        ("validated", {"weight_decays": GRID, "max_iter": 50}),
        ("paper", {"epochs": 2, "batch_size": 64}),
    ):
        result = linear_probe(*blobs(), protocol=protocol, **options)
        assert json.loads(json.dumps(result)) == result


# --- what each protocol trains on -----------------------------------------------------------


def test_paper_protocol_trains_on_the_raw_embedding_and_validated_on_unit_vectors(tiny_clip, cls_split):
    import torch

    from remoteclip.evaluate.features import Images, embed
    from remoteclip.evaluate.scored import scored_items
    from remoteclip.evaluate.tasks import probe_inputs

    model, preprocess, tokenizer = tiny_clip
    images, _ = embed(model, preprocess, tokenizer, cls_split, ["a photo of {}."], ["words"], "cpu", workers=0)
    items, _ = scored_items(cls_split)
    with torch.no_grad():
        raw = model.encode_image(torch.stack([Images(items, preprocess)[i] for i in range(len(items))])).numpy()
    norms = np.linalg.norm(raw, axis=1)
    assert np.abs(norms - 1).max() > 0.1, "a raw embedding that is already unit length would prove nothing"
    train = ~images["is_test"]
    paper = probe_inputs(images, {"protocol": "paper"})
    np.testing.assert_allclose(paper[0], raw[train], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(paper[2], raw[~train], rtol=1e-5, atol=1e-6)
    validated = probe_inputs(images, {"protocol": "validated"})
    np.testing.assert_allclose(validated[0], raw[train] / norms[train, None], rtol=1e-5, atol=1e-6)
    assert (paper[1] == validated[1]).all() and (paper[3] == validated[3]).all()


def test_paper_protocol_refuses_features_cached_without_norms():
    from remoteclip.evaluate.tasks import probe_inputs

    images = {
        "features": np.ones((4, 3)),
        "labels": np.array([0, 1, 0, 1]),
        "is_test": np.array([False, False, True, True]),
    }
    with pytest.raises(ValueError, match="no 'norms'.*rerun the features rule"):
        probe_inputs(images, {"protocol": "paper"})


def test_grid_stops_after_patience_points_without_a_better_accuracy_and_keeps_the_choice():
    # noisy blobs overfit at weak decays: the validation accuracy peaks inside a fine grid
    data = blobs(n_train=90, spread=2.0, seed=7, dims=40)
    grid = tuple(np.logspace(-6, 1, 15))
    whole = linear_probe(*data, weight_decays=grid, patience=None)["protocol"]
    stopped = linear_probe(*data, weight_decays=grid, patience=2)["protocol"]
    full, short = whole["search"]["grid"], stopped["search"]["grid"]
    assert stopped["search"]["stopped_early"] and not whole["search"]["stopped_early"]
    assert len(short) < len(full) and short == full[: len(short)]
    best = max(row["val_acc1"] for row in short)
    assert all(row["val_acc1"] <= best for row in short[-2:]) and short[-3]["val_acc1"] == best
    assert stopped["weight_decay"] == whole["weight_decay"]
    assert "stopped 2 points after the best" in stopped["selection"]


def test_grid_does_not_stop_on_the_strong_decays_plateau():
    # every strong decay predicts one class: equal accuracies that must not end the search
    data = blobs(n_train=150, spread=0.8, seed=6)
    result = linear_probe(*data, weight_decays=(1e3, 3e2, 1e2, 30.0, 10.0, 1.0, 1e-2), patience=2)
    grid = result["protocol"]["search"]["grid"]
    assert grid[0]["val_acc1"] == grid[1]["val_acc1"] == grid[2]["val_acc1"]
    assert len(grid) > 3 and result["protocol"]["weight_decay"] < 30.0
