"""Evaluation splits of classification datasets.

The maintainers' protocol (RemoteCLIP issues #2 and #11): per class, files sorted by
name, the first 80 % train and the last 20 % test. It depends only on file names, so it
is the same on any file order and any machine.

No stage of its own: `evaluate.sets.classification_split` applies it for the `eval_split` rule
(results/splits/{benchmark}.json) and for `hash_test_split` (the test images the leak filter
protects), with `splits.train_fraction` from the config.
"""

from __future__ import annotations

import math

from .schema import defaults

TRAIN_FRACTION = defaults("splits")["train_fraction"]


def filename_split(
    files_by_class: dict[str, list[str]], train_fraction: float = TRAIN_FRACTION
) -> dict[str, dict[str, list[str]]]:
    """{"train": {class: files}, "test": {class: files}}; every class keeps at least one
    test file when it has two or more files."""
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    out: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
    for cls in sorted(files_by_class):
        files = sorted(files_by_class[cls])
        n_train = math.floor(len(files) * train_fraction + 1e-9)
        if len(files) >= 2:
            n_train = min(max(n_train, 1), len(files) - 1)
        out["train"][cls] = files[:n_train]
        out["test"][cls] = files[n_train:]
    return out
