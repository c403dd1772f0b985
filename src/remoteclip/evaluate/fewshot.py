"""Few-shot linear probes (paper: 1, 4, 8, 16 and 32 shots per class, sampled at random).

The paper does not state how many repeats it ran; we average over `seeds` draws and report
the population standard deviation (ddof = 0) next to the mean. The classifier is the linear
probe of `probe.py`. Under the validated protocol the weight decay is fixed by the caller
(the one the full-train probe chose on its validation part) because a 1-shot train set leaves
nothing to validate on; under the paper protocol every run does the paper's test-selected search.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..schema import defaults
from ._common import as_labels, as_matrix, check_n_classes
from .probe import DEFAULT_PROTOCOL, PAPER, linear_probe

_DEFAULTS = defaults("evaluation.fewshot")
DEFAULT_SHOTS = tuple(_DEFAULTS["shots"])
DEFAULT_SEEDS = _DEFAULTS["seeds"]
_PER_RUN = ("search", "trials", "fit", "n_train", "lr", "weight_decay", "best_epoch", "seed")


def sample_shots(labels, shots: int, seed: int) -> np.ndarray:
    """Sorted indices of `shots` samples per class, without replacement (all of a smaller class).

    Each class is drawn by its own generator seeded with (seed, class), so the draw of a class
    depends only on the seed and on the positions of that class's samples.
    """
    labels = as_labels(labels, "labels")
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
        raise ValueError(f"shots must be a positive integer, got {shots!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rng = np.random.default_rng([int(seed), int(c)])
        chosen.append(members[rng.permutation(members.size)[:shots]])
    return np.sort(np.concatenate(chosen))


def fewshot(
    train_x,
    train_y,
    test_x,
    test_y,
    n_classes: int,
    shots: Sequence[int] = DEFAULT_SHOTS,
    seeds: int | Iterable[int] = DEFAULT_SEEDS,
    weight_decay: float | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    **probe_options,
) -> dict:
    """{"metrics": {"k": {"mean", "std", "acc1": [per seed], "n_train": [per seed]}}, "protocol": {...}}.

    Shot counts are string keys so that the result survives a JSON round trip. `seeds` is a
    count (seeds 0..n-1) or the seeds themselves. Validated protocol: `weight_decay` is
    required. Paper protocol: every run does the paper's own search from 4e-5, so a given
    `weight_decay` is not used (it is recorded as ignored).
    """
    check_n_classes(n_classes)
    train_x = as_matrix(train_x, "train_x")  # once, not per run; rows must match the labels we sample
    train_y = as_labels(train_y, "train_y", train_x.shape[0], n_classes)
    seed_list = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not seed_list or not shots:
        raise ValueError("fewshot needs at least one seed and one shot count")
    if protocol == "validated" and weight_decay is None:
        raise ValueError(
            "fewshot (validated protocol) needs weight_decay: pass the one the full linear probe "
            "chose (linear_probe(...)['protocol']['weight_decay'])"
        )
    results, probe_record = {}, None
    for k in shots:
        runs = [
            _run(train_x, train_y, test_x, test_y, n_classes, k, seed, weight_decay, protocol, probe_options)
            for seed in seed_list
        ]
        probe_record = probe_record or runs[0]["protocol"]
        results[str(k)] = _summary(runs, protocol)
    return {"metrics": results, "protocol": _record(protocol, seed_list, weight_decay, train_y, shots, probe_record)}


def _run(train_x, train_y, test_x, test_y, n_classes, shots, seed, weight_decay, protocol, options) -> dict:
    index = sample_shots(train_y, shots, seed)
    if protocol == "validated":
        options = options | {"weight_decay": weight_decay}
    result = linear_probe(
        train_x[index], train_y[index], test_x, test_y, n_classes, protocol=protocol, seed=seed, **options
    )
    result["n_train"] = int(index.size)
    return result


def _summary(runs: list[dict], protocol: str) -> dict:
    acc = [r["metrics"]["acc1"] for r in runs]
    summary = {
        "mean": float(np.mean(acc)),
        "std": float(np.std(acc)),
        "acc1": acc,
        "n_train": [r["n_train"] for r in runs],
    }
    if protocol == "paper":
        summary["chosen"] = [
            {
                "lr": r["protocol"]["lr"],
                "weight_decay": r["protocol"]["weight_decay"],
                "epoch": r["protocol"]["best_epoch"],
            }
            for r in runs
        ]
    return summary


def _record(protocol, seeds, weight_decay, train_y, shots, probe_record) -> dict:
    sizes = np.bincount(train_y)
    present = np.flatnonzero(sizes)
    record = {
        "name": protocol,
        "sampling": "per class, without replacement, numpy generator seeded with (seed, class); "
        "a class with fewer samples than shots contributes all of them",
        "seeds": seeds,
        "std": "population standard deviation over seeds (ddof=0)",
        "short_classes": {str(k): present[sizes[present] < k].tolist() for k in shots if (sizes[present] < k).any()},
        "probe": {k: v for k, v in probe_record.items() if k not in _PER_RUN},
    }
    if protocol == "validated":
        record["weight_decay"] = float(weight_decay)
        record["weight_decay_source"] = (
            "fixed by the caller (the full-train probe's validated choice); a 1-shot "
            "train set leaves nothing to validate on, so no per-shot selection"
        )
    else:
        record["selection"] = probe_record["selection"]
        record["weight_decay_source"] = (
            f"paper search per run: default trial {PAPER['weight_decay']} plus random "
            "draws, chosen on test (see metrics[k]['chosen'])"
        )
        if weight_decay is not None:
            record["ignored_weight_decay"] = float(weight_decay)
    return record
