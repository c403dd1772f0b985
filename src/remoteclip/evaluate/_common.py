"""Input checks, the tie rule and the classification metrics shared by the metric modules.

Tie rule (classification and counting top-k): candidates are ranked by score, highest first,
and equal scores keep their index order, i.e. the top k are the first k of a *stable*
descending sort. CLIP_benchmark and ITRA call `torch.topk`, which returns an unspecified
subset when a tie straddles the k-th place; where no tie straddles it (real-valued image
features against distinct class prompts, almost surely) both rules pick the same set.
Retrieval, where identical captions make exact ties common, offers both orders and records
their bounds (`retrieval.py`).
"""

from __future__ import annotations

import numpy as np


def to_numpy(array, name: str) -> np.ndarray:
    """numpy view of an array-like or a (CPU or GPU) torch tensor."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    try:
        return np.asarray(array)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: not an array ({exc})") from None


def as_matrix(array, name: str, dtype=np.float64) -> np.ndarray:
    """Non-empty, finite 2-D float array: float64, or with `dtype=None` the input's own
    float type (integers become float64)."""
    x = to_numpy(array, name)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (rows, dims), got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name}: empty array of shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{name}: expected real numbers, got dtype {x.dtype}")
    if dtype is None:
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    x = x.astype(dtype, copy=False)
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return x


def as_labels(array, name: str, length: int | None = None, n_classes: int | None = None) -> np.ndarray:
    """1-D int64 labels, optionally of a given length and within [0, n_classes)."""
    y = to_numpy(array, name)
    if y.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of labels, got shape {y.shape}")
    if y.size == 0:
        raise ValueError(f"{name}: no labels")
    if not (np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)))):
        raise ValueError(f"{name}: labels must be integers, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if length is not None and y.size != length:
        raise ValueError(f"{name}: {y.size} labels for {length} rows")
    if n_classes is not None:
        check_n_classes(n_classes)
        bad = (y < 0) | (y >= n_classes)
        if bad.any():
            raise ValueError(f"{name}: label {int(y[bad][0])} outside [0, {n_classes})")
    elif (y < 0).any():
        raise ValueError(f"{name}: negative label {int(y[y < 0][0])}")
    return y


def check_n_classes(n_classes: int) -> None:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")


def check_same_dims(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{name_a} has {a.shape[1]} dimensions but {name_b} has {b.shape[1]}")


def l2_normalise(x: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name}: {int((norms == 0).sum())} all-zero vector(s) cannot be L2-normalised")
    return x / norms


def stable_rank(scores: np.ndarray, target: np.ndarray) -> np.ndarray:
    """0-based place of column `target[i]` in row i under the tie rule of this module."""
    rows = np.arange(scores.shape[0])
    own = scores[rows, target][:, None]
    above = (scores > own).sum(axis=1)
    tied_before = ((scores == own) & (np.arange(scores.shape[1]) < target[:, None])).sum(axis=1)
    return above + tied_before


def classification_metrics(scores, labels, n_classes: int) -> dict[str, float]:
    """acc1, acc5 (top-min(5, n_classes)) and mean per-class recall, all x100.

    Mean per-class recall (balanced accuracy, as sklearn's `balanced_accuracy_score` that
    CLIP_benchmark calls) averages over the classes that occur in `labels`: a class with no
    test sample has no recall and is left out rather than counted as 0.
    """
    check_n_classes(n_classes)
    scores = as_matrix(scores, "scores")
    if scores.shape[1] != n_classes:
        raise ValueError(f"scores: {scores.shape[1]} columns for {n_classes} classes")
    labels = as_labels(labels, "labels", scores.shape[0], n_classes)
    rank = stable_rank(scores, labels)
    hit1 = rank < 1
    present = np.unique(labels)
    per_class = [hit1[labels == c].mean() for c in present]
    return {
        "acc1": float(hit1.mean() * 100),
        "acc5": float((rank < min(5, n_classes)).mean() * 100),
        "mean_per_class_recall": float(np.mean(per_class) * 100),
    }
