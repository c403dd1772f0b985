"""Linear probe: multinomial logistic regression on frozen image features, in torch.

Written by hand because CLIP_benchmark's probe (AdamW, its own sweep) is not the paper's
recipe and scikit-learn is not a dependency. Two protocols, recorded in every result:

- "validated" (default): L2-normalised features; the weight decay is chosen over a log grid
  on a stratified, seeded validation part of the *train* split, the classifier is refitted on
  the whole train split and scored once on test. Test labels are only read by the final score.
  The fit is full-batch L-BFGS (`logreg`: float32, on the GPU when torch sees one) on a convex
  loss whose optimum fixes every prediction, so it needs no learning rate, epochs or seed: the
  weight decay is the only hyper-parameter left.
- "paper": RemoteCLIP's recipe as ITRA's `linear_eval.py` runs it: raw features, SGD
  (momentum 0.9) lr 0.8, cosine annealing, cross-entropy, weight decay 4e-5, 1000 epochs,
  batch 10,000, unshuffled, plus 5 random (lr, weight decay) draws; the reported accuracy is
  the best *test* accuracy over trials and epochs. That selects on test: optimistic.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..schema import defaults
from . import logreg
from ._common import as_labels, as_matrix, check_n_classes, check_same_dims, classification_metrics, l2_normalise

# Half-decade steps. On L2-normalised CLIP features with a mean loss the useful decays are
# small (about 1e-5..1e-2 on RESISC45-sized problems); `grid_edge` in the record flags a
# choice at either end of the grid.
DEFAULT_WEIGHT_DECAYS = tuple(float(v) for v in np.logspace(-7, 1, 17))
# The grid's fits only rank weight decays by validation accuracy; the chosen one is refitted on
# the whole train split at the tight `logreg.DEFAULT_TOL`. 1e-6 gave the tight fits' validation
# accuracies (and choice) on a 4,000 x 768 x 51 probe in a third fewer iterations; 1e-5 and
# looser changed the choice (a loose fit at a weak decay is an early-stopped, more regularised one).
GRID_TOL = 1e-6
# Stop the grid after this many weaker decays in a row without a better validation accuracy (a
# tie never changes the choice: ties go to the larger decay), once accuracy has left the strong
# end's level. The weak end's fits are the slowest; an accuracy that falls and then rises above
# its earlier best further down the grid is missed.
PATIENCE = 3
PAPER = {"lr": 0.8, "weight_decay": 4e-5, "epochs": 1000, "batch_size": 10000, "momentum": 0.9, "search_trials": 5}
PAPER_SELECTION = "test split (paper protocol; optimistic)"
_DEFAULTS = defaults("evaluation.linear_probe")
DEFAULT_PROTOCOL = _DEFAULTS["protocol"]
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclasses.dataclass
class LinearClassifier:
    weight: np.ndarray  # (classes, dims)
    bias: np.ndarray  # (classes,)
    info: dict = dataclasses.field(default_factory=dict)


def fit_logreg(
    x,
    y,
    n_classes: int,
    weight_decay: float,
    *,
    method: str = "lbfgs",
    max_iter: int = 1000,
    lr: float = PAPER["lr"],
    epochs: int = int(PAPER["epochs"]),
    batch_size: int = int(PAPER["batch_size"]),
    momentum: float = PAPER["momentum"],
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "auto",
    init: LinearClassifier | None = None,
    on_epoch: Callable[[int, LinearClassifier], None] | None = None,
) -> LinearClassifier:
    """Fit logits = x W^T + b by mean cross-entropy with weight decay.

    "lbfgs": minimises CE + weight_decay / 2 * ||W||^2 (the bias is not decayed), from zeros
    or `init`, for at most `max_iter` iterations (`logreg.fit`), float32 by default, on
    `device` ("auto": the GPU when torch sees one). "sgd": ITRA's loop (N(0, 0.01) init from
    `seed`, SGD with momentum and decay on all parameters, cosine schedule stepped per epoch,
    batches in input order), float32 on the CPU by default; `on_epoch` gets a snapshot after
    each epoch's updates, before the schedule steps.
    """
    check_n_classes(n_classes)
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    x = as_matrix(x, "x", dtype=None)
    y = as_labels(y, "y", x.shape[0], n_classes)
    if method == "lbfgs":
        _check_positive(max_iter=max_iter)
        data = logreg.Data(x, y, n_classes, dtype or torch.float32, logreg.resolve_device(device))
        start = None if init is None else data.centred(init.weight, init.bias)
        return _classifier(data, logreg.fit(data, weight_decay, start, max_iter=max_iter))
    if method == "sgd":
        _check_positive(epochs=epochs, batch_size=batch_size, lr=lr)
        return _fit_sgd(
            x, y, n_classes, weight_decay, lr, epochs, batch_size, momentum, seed, dtype or torch.float32, on_epoch
        )
    raise ValueError(f"unknown method {method!r}: expected 'lbfgs' or 'sgd'")


def _check_positive(**values) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")


def _classifier(data: logreg.Data, fit: logreg.Fit) -> LinearClassifier:
    weight, bias = data.original(fit.theta)
    return LinearClassifier(weight, bias, {"method": "lbfgs", **fit.info})


def _fit_sgd(x, y, n_classes, weight_decay, lr, epochs, batch_size, momentum, seed, dtype, on_epoch):
    xt, yt = torch.as_tensor(x, dtype=dtype), torch.as_tensor(y)
    generator = torch.Generator().manual_seed(int(seed))
    w = torch.empty(n_classes, x.shape[1], dtype=dtype).normal_(0.0, 0.01, generator=generator).requires_grad_()
    b = torch.zeros(n_classes, dtype=dtype, requires_grad=True)
    optimiser = torch.optim.SGD([w, b], lr=lr, momentum=momentum, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs, eta_min=0)
    for epoch in range(epochs):
        for start in range(0, len(yt), batch_size):
            loss = F.cross_entropy(F.linear(xt[start : start + batch_size], w, b), yt[start : start + batch_size])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if on_epoch is not None:
            on_epoch(epoch, _snapshot(w, b, {"method": "sgd", "epoch": epoch}))
        schedule.step()
    return _snapshot(w, b, {"method": "sgd", "epochs": epochs, "last_batch_loss": loss.item()})


def _snapshot(w: torch.Tensor, b: torch.Tensor, info: dict) -> LinearClassifier:
    return LinearClassifier(w.detach().numpy().astype(np.float64), b.detach().numpy().astype(np.float64), info)


def predict(model: LinearClassifier, x) -> np.ndarray:
    """Logits (rows, classes) of a fitted classifier."""
    x = as_matrix(x, "x")
    if x.shape[1] != model.weight.shape[1]:
        raise ValueError(f"x has {x.shape[1]} dimensions, the classifier expects {model.weight.shape[1]}")
    return x @ model.weight.T + model.bias


def linear_probe(
    train_x,
    train_y,
    test_x,
    test_y,
    n_classes: int,
    protocol: str = DEFAULT_PROTOCOL,
    seed: int = _DEFAULTS["seed"],
    **options,
) -> dict:
    """{"metrics": {acc1, acc5, mean_per_class_recall}, "protocol": {what was done}}.

    Options, "validated": weight_decays (grid), val_fraction (0.2), max_iter, normalise
    (True), weight_decay (fixes it and skips the search, for few-shot), dtype ("float32" or
    "float64"), device ("auto": the GPU when torch sees one), tol (the final fit's stopping
    rule, `logreg`), grid_tol (the grid's, GRID_TOL), patience (PATIENCE; None: the whole
    grid). "paper": lr,
    weight_decay (of the default trial), epochs, batch_size, momentum, search_trials,
    include_default (True), normalise (False).
    """
    runners: dict[str, Callable[..., dict]] = {"validated": _validated, "paper": _paper}
    runner = runners.get(protocol)
    if runner is None:
        raise ValueError(f"unknown linear-probe protocol {protocol!r}: expected 'validated' or 'paper'")
    known = [p.name for p in inspect.signature(runner).parameters.values() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"linear-probe option(s) {unknown} do not apply to the {protocol!r} protocol (it takes {known})"
        )
    return runner(*_checked(train_x, train_y, test_x, test_y, n_classes), n_classes, seed, **options)


def _checked(train_x, train_y, test_x, test_y, n_classes):
    check_n_classes(n_classes)
    train, test = _features(train_x, "train_x"), _features(test_x, "test_x")
    check_same_dims(train, test, "train_x", "test_x")
    return (
        train,
        as_labels(train_y, "train_y", train.shape[0], n_classes),
        test,
        as_labels(test_y, "test_y", test.shape[0], n_classes),
    )


def _features(x, name: str) -> np.ndarray:
    """float32 or float64 as given (cached features are float32: no float64 copy of them), wider
    than float16."""
    x = as_matrix(x, name, dtype=None)
    return x if x.dtype.itemsize >= 4 else x.astype(np.float32)


# --- validated protocol ------------------------------------------------------------------


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) indices: per class round(fraction * n) held out, at least one kept.

    Each class is shuffled by its own generator seeded with (seed, class), so adding a class
    does not change the split of the others. A class of one sample stays in the fit part.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction!r}")
    fit, val = [], []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members = members[np.random.default_rng([int(seed), int(c)]).permutation(members.size)]
        n_val = min(members.size - 1, int(np.floor(fraction * members.size + 0.5)))
        val.append(members[:n_val])
        fit.append(members[n_val:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(val))


def select_weight_decay(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    weight_decays: Sequence[float],
    val_fraction: float,
    seed: int,
    max_iter: int,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "auto",
    tol: float = GRID_TOL,
    patience: int | None = PATIENCE,
) -> tuple[float, dict, logreg.Fit, logreg.Data]:
    """Weight decay with the best validation acc1 (ties: the larger one), the search record,
    the fit part's optimum for it, and that part's data (its covariance eigenbasis and the
    optimum's curvature pairs serve the refit).

    The grid is fitted from strong to weak decay, each fit started from the previous optimum
    (`logreg.path`; the loss is convex, so this only saves iterations), to the stopping rule
    `tol`; it stops after `patience` points in a row without a better accuracy once accuracy has
    risen above the first point's (None: the whole grid).
    """
    if len(weight_decays) == 0:
        raise ValueError("weight_decays: empty grid")
    fit, val = stratified_split(y, val_fraction, seed)
    if val.size == 0:
        raise ValueError("too few training samples per class to hold out a validation part; pass weight_decay")
    data = logreg.Data(x[fit], y[fit], n_classes, dtype, logreg.resolve_device(device))
    val_x, table = as_matrix(x[val], "x"), []
    best, model, since_best = None, None, 0
    for wd, optimum in logreg.path(data, weight_decays, tol=tol, max_iter=max_iter):
        accuracy = classification_metrics(predict(_classifier(data, optimum), val_x), y[val], n_classes)["acc1"]
        table.append({"weight_decay": wd, "val_acc1": accuracy, "iterations": optimum.info["iterations"]})
        if best is None or accuracy > best["val_acc1"]:  # first maximum = the larger decay
            best, model, since_best = table[-1], optimum, 0
        else:
            since_best += 1
        if patience is not None and since_best >= patience and best["val_acc1"] > table[0]["val_acc1"]:
            break
    assert best is not None and model is not None
    stopped = len(table) < len(weight_decays)
    edge = len(table) > 1 and (best is table[0] or (best is table[-1] and not stopped))
    record = {
        "n_fit": int(fit.size),
        "n_val": int(val.size),
        "grid": table,
        "grid_edge": edge,
        "grid_tol": tol,
        "patience": patience,
        "stopped_early": stopped,
    }
    return best["weight_decay"], record, model, data


def _validated(
    train,
    train_y,
    test,
    test_y,
    n_classes,
    seed,
    *,
    weight_decay=None,
    weight_decays=DEFAULT_WEIGHT_DECAYS,
    val_fraction=0.2,
    max_iter=1000,
    normalise=True,
    dtype="float32",
    device="auto",
    tol=logreg.DEFAULT_TOL,
    grid_tol=GRID_TOL,
    patience=PATIENCE,
) -> dict:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    _check_positive(max_iter=max_iter)
    if normalise:
        train, test = l2_normalise(train, "train_x"), l2_normalise(test, "test_x")
    device = logreg.resolve_device(device)
    protocol = {
        "name": "validated",
        "classifier": f"multinomial logistic regression, full-batch L-BFGS (torch, {dtype}), bias not decayed",
        "solver": "remoteclip.evaluate.logreg: centred features, L-BFGS preconditioned by a Kronecker "
        "approximation of the Hessian, line search on the logits; stops when the predicted decrease "
        f"is below {tol:g} of the loss",
        "device": device.type,
        "features": "L2-normalised" if normalise else "as given",
        "max_iter": max_iter,
        "seed": seed,
        "n_train": int(train.shape[0]),
        "n_test": int(test.shape[0]),
    }
    start = fit_part = None
    if weight_decay is None:
        weight_decay, search, start, fit_part = select_weight_decay(
            train,
            train_y,
            n_classes,
            weight_decays,
            val_fraction,
            seed,
            max_iter,
            DTYPES[dtype],
            device,
            grid_tol,
            patience,
        )
        stop = "the whole grid" if patience is None else f"stopped {patience} points after the best"
        protocol |= {
            "selection": f"stratified {val_fraction:.0%} validation part of the train split (seed {seed}), grid "
            f"from strong to weak decay fitted to {grid_tol:g} ({stop}); refit on the whole train split "
            f"(started from the fit part's optimum, to {tol:g}); test split scored once",
            "val_fraction": val_fraction,
            "search": search,
        }
    else:
        protocol["selection"] = "none: weight decay fixed by the caller; test split scored once"
    data = logreg.Data(train, train_y, n_classes, DTYPES[dtype], device, like=fit_part)
    init = memory = None
    if start is not None and fit_part is not None:  # the fit part's optimum, moved to the whole split's centring
        init, memory = data.centred(*fit_part.original(start.theta)), start.memory
    del fit_part, start
    model = _classifier(data, logreg.fit(data, weight_decay, init, tol=tol, max_iter=max_iter, memory=memory))
    del data
    protocol |= {"weight_decay": float(weight_decay), "fit": model.info}
    return {"metrics": classification_metrics(predict(model, test), test_y, n_classes), "protocol": protocol}


# --- paper protocol ----------------------------------------------------------------------


def paper_search_draws(trials: int, seed: int) -> list[tuple[float, float]]:
    """ITRA's random (lr, weight decay) draws: lr = 10^-U{1,2} * U{1..8}, wd = 10^-U{5..9} * U{1..8}."""
    rng = np.random.default_rng(int(seed))
    draws = []
    for _ in range(trials):
        lr = 10.0 ** -int(rng.integers(1, 3)) * int(rng.integers(1, 9))
        wd = 10.0 ** -int(rng.integers(5, 10)) * int(rng.integers(1, 9))
        draws.append((lr, wd))
    return draws


def _paper(
    train,
    train_y,
    test,
    test_y,
    n_classes,
    seed,
    *,
    lr=PAPER["lr"],
    weight_decay=None,
    epochs=PAPER["epochs"],
    batch_size=PAPER["batch_size"],
    momentum=PAPER["momentum"],
    search_trials=PAPER["search_trials"],
    include_default=True,
    normalise=False,
) -> dict:
    if normalise:
        train, test = l2_normalise(train, "train_x"), l2_normalise(test, "test_x")
    default = [(float(lr), float(PAPER["weight_decay"] if weight_decay is None else weight_decay))]
    settings = (default if include_default else []) + paper_search_draws(search_trials, seed)
    if not settings:
        raise ValueError("paper protocol: no trial (search_trials=0 and include_default=False)")
    options = {"epochs": epochs, "batch_size": batch_size, "momentum": momentum}
    trials = [
        _trial_best_on_test(train, train_y, test, test_y, n_classes, t_lr, t_wd, seed, i, options)
        for i, (t_lr, t_wd) in enumerate(settings)
    ]
    best = max(trials, key=lambda t: t["acc1"])  # first maximum, as ITRA's max()
    metrics = best.pop("metrics")
    return {"metrics": metrics, "protocol": _paper_record(trials, best, seed, normalise, options, train, test)}


def _trial_best_on_test(train, train_y, test, test_y, n_classes, lr, wd, seed, index, options) -> dict:
    best = {"lr": lr, "weight_decay": wd, "acc1": -1.0, "epoch": None, "metrics": None}

    def keep_best(epoch: int, model: LinearClassifier) -> None:
        metrics = classification_metrics(predict(model, test), test_y, n_classes)
        if metrics["acc1"] > best["acc1"]:
            best.update(acc1=metrics["acc1"], epoch=epoch, metrics=metrics)

    init_seed = int(np.random.default_rng([int(seed), index]).integers(2**62))
    fit_logreg(train, train_y, n_classes, wd, method="sgd", lr=lr, seed=init_seed, on_epoch=keep_best, **options)
    return best


def _paper_record(trials, best, seed, normalise, options, train, test) -> dict:
    return {
        "name": "paper",
        "selection": PAPER_SELECTION,
        "warning": "hyper-parameters and epoch chosen by TEST accuracy (RemoteCLIP/ITRA 'pytorch-search'); "
        "the numbers are optimistic and not comparable with the validated protocol",
        "classifier": "linear layer, SGD with momentum, CosineAnnealingLR(T_max=epochs, eta_min=0) stepped per "
        "epoch, cross-entropy, weight decay on weight and bias, N(0, 0.01) init, unshuffled batches",
        "features": "L2-normalised" if normalise else "as given (ITRA: raw encode_image output)",
        **options,
        "trials": [{k: v for k, v in t.items() if k != "metrics"} for t in trials],
        "lr": best["lr"],
        "weight_decay": best["weight_decay"],
        "best_epoch": best["epoch"],
        "seed": seed,
        "n_train": int(train.shape[0]),
        "n_test": int(test.shape[0]),
    }
