"""Weighted k-NN classification on frozen features (paper: k = 20, T = 0.07, top-1).

As DINO's / ITRA's `knn_classifier`: features are L2-normalised, each test image takes its k
most similar training images (cosine), and each neighbour votes for its class with weight
exp(cos_sim / T). Neighbours tied in similarity are taken in training-index order, and a tie
in votes goes to the lower class index (`_common`), where `torch.topk` / `sort` leave both
unspecified.
"""

from __future__ import annotations

import numpy as np

from ..schema import defaults
from ._common import as_labels, as_matrix, check_n_classes, check_same_dims, classification_metrics, l2_normalise

_DEFAULTS = defaults("evaluation.knn")
K, TEMPERATURE = _DEFAULTS["k"], _DEFAULTS["temperature"]
_BLOCK = 2**24  # similarity entries per block of test rows (128 MiB of float64)


def knn_scores(train_x, train_y, test_x, n_classes: int, k: int = K, temperature: float = TEMPERATURE) -> np.ndarray:
    """Summed neighbour votes (test rows, classes); k is clipped to the training-set size."""
    train, labels, test = _checked(train_x, train_y, test_x, n_classes, k, temperature)
    k = min(k, train.shape[0])
    onehot = np.eye(n_classes)[labels]
    rows = max(1, _BLOCK // train.shape[0])
    return np.concatenate(
        [_votes(test[s : s + rows] @ train.T, onehot, k, temperature) for s in range(0, test.shape[0], rows)]
    )


def _checked(train_x, train_y, test_x, n_classes, k, temperature):
    check_n_classes(n_classes)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    train = l2_normalise(as_matrix(train_x, "train_x"), "train_x")
    test = l2_normalise(as_matrix(test_x, "test_x"), "test_x")
    check_same_dims(train, test, "train_x", "test_x")
    labels = as_labels(train_y, "train_y", train.shape[0], n_classes)
    return train, labels, test


def _votes(similarity: np.ndarray, onehot: np.ndarray, k: int, temperature: float) -> np.ndarray:
    weights = np.where(_top_k_mask(similarity, k), np.exp(similarity / temperature), 0.0)
    return weights @ onehot


def _top_k_mask(similarity: np.ndarray, k: int) -> np.ndarray:
    """The k nearest per row; among those tied with the k-th, the lowest training indices.

    A partition instead of a full sort: votes are sums, so the neighbours' order is irrelevant.
    """
    kth = -np.partition(-similarity, k - 1, axis=1)[:, k - 1 : k]
    above = similarity > kth
    tied = similarity == kth
    room = k - above.sum(axis=1, keepdims=True)
    return above | (tied & (np.cumsum(tied, axis=1) <= room))


def knn_predict(train_x, train_y, test_x, n_classes: int, k: int = K, temperature: float = TEMPERATURE) -> np.ndarray:
    """Predicted class per test row (int64); ties in votes go to the lower class index."""
    return np.argmax(knn_scores(train_x, train_y, test_x, n_classes, k, temperature), axis=1)


def knn_metrics(
    train_x, train_y, test_x, test_y, n_classes: int, k: int = K, temperature: float = TEMPERATURE
) -> dict[str, float]:
    """{"acc1", "acc5", "mean_per_class_recall"}, x100, ranked by votes.

    acc5 is reported for completeness; classes without votes tie at 0 and are ranked by class
    index, so it means little when k < 5 (ITRA reports top-1 only).
    """
    scores = knn_scores(train_x, train_y, test_x, n_classes, k, temperature)
    return classification_metrics(scores, test_y, n_classes)
