"""Cross-modal retrieval (RSITMD, RSICD, UCM) as the official RemoteCLIP `retrieval.py`.

That script reads the Karpathy test split, capitalises each raw caption, groups the captions
of each image (images de-duplicated and sorted by `np.unique`) and scores R@1/5/10 both ways
with CLIP_benchmark's `recall_at_k`: a query is a hit when at least one of its positives is
among its k best-scoring candidates, averaged over queries, x100. The mean recall is the mean
of the six numbers. Ties are ranked by the rule in `_common` (stable: lower index first).
"""

from __future__ import annotations

import logging

import numpy as np

from ._common import as_labels, as_matrix, check_same_dims, l2_normalise, stable_rank, to_numpy

log = logging.getLogger(__name__)


def group_captions(entries: list[dict]) -> tuple[list[str], list[str], np.ndarray]:
    """(unique sorted filenames, captions, caption_to_image) of Karpathy test images.

    A filename listed twice gets the captions of both entries, in order of appearance.
    Unlike the official script, grouping also happens when no image has more than one
    caption: there it is skipped and every caption string would be iterated per character.
    Entries without sentences contribute no image, as in the official script; they are
    counted in a warning.
    """
    files, captions = _flatten(entries)
    if not files:
        raise ValueError("no captions in the retrieval entries (is the test split empty?)")
    unique = np.unique(files)
    position = {name: i for i, name in enumerate(unique.tolist())}
    order = sorted(range(len(files)), key=lambda i: position[files[i]])  # sorted() is stable
    grouped = [captions[i] for i in order]
    index = np.array([position[files[i]] for i in order], dtype=np.int64)
    return unique.tolist(), grouped, index


def _flatten(entries: list[dict]) -> tuple[list[str], list[str]]:
    files, captions, empty = [], [], 0
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
            raise ValueError(f"retrieval entry {number}: expected a dict with a 'filename' string")
        sentences = entry.get("sentences") or []
        empty += not sentences
        for s, sentence in enumerate(sentences):
            if not isinstance(sentence, dict) or not isinstance(sentence.get("raw"), str):
                raise ValueError(f"retrieval entry {number} ({entry['filename']}): sentence {s} has no 'raw' string")
            files.append(entry["filename"])
            captions.append(sentence["raw"].capitalize())
    if empty:
        log.warning("%d retrieval entries without sentences contribute no image (as the official script)", empty)
    return files, captions


def recall_at_k(scores: np.ndarray, positives: np.ndarray, k: int) -> float:
    """Fraction of queries (rows) with at least one positive among their top-k candidates.

    The top k are the first k of a stable descending sort of the row: a candidate tied with
    the k-th score is inside only when its column index is lower. A `k` above the number of
    candidates is clipped (every query then hits). A row without any positive has no defined
    recall and raises (CLIP_benchmark would silently count it as a miss).
    """
    scores = as_matrix(scores, "scores")
    positives = to_numpy(positives, "positives")
    if positives.shape != scores.shape or positives.dtype != bool:
        raise ValueError(f"positives: expected a bool array of shape {scores.shape}, "
                         f"got {positives.dtype} {positives.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    empty = ~positives.any(axis=1)
    if empty.any():
        first = int(np.flatnonzero(empty)[0])
        raise ValueError(f"{int(empty.sum())} query rows have no positive (first: row {first})")
    return float((_best_positive_rank(scores, positives) < k).mean())


def _best_positive_rank(scores: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Rank of each row's first-ranked positive: the best-scoring one, lowest index among ties."""
    best = np.where(positives, scores, -np.inf).max(axis=1, keepdims=True)
    first = np.argmax(positives & (scores == best), axis=1)
    return stable_rank(scores, first)


def retrieval_metrics(image_features, text_features, caption_to_image, ks=(1, 5, 10)) -> dict[str, float]:
    """R@k image->text and text->image and their mean, x100, on L2-normalised features.

    Keys: `image_to_text_R@{k}`, `text_to_image_R@{k}` for each k, and `mean_recall` (the mean
    of all of them: of six numbers for the default ks). Image->text corresponds to
    CLIP_benchmark's `text_retrieval_recall@k`, text->image to `image_retrieval_recall@k`.
    """
    if not ks:
        raise ValueError("ks: at least one k is needed")
    images = l2_normalise(as_matrix(image_features, "image_features"), "image_features")
    texts = l2_normalise(as_matrix(text_features, "text_features"), "text_features")
    check_same_dims(images, texts, "image_features", "text_features")
    owner = as_labels(caption_to_image, "caption_to_image", texts.shape[0], images.shape[0])
    scores = texts @ images.T
    positives = np.zeros(scores.shape, dtype=bool)
    positives[np.arange(len(owner)), owner] = True
    if not positives.any(axis=0).all():
        missing = np.flatnonzero(~positives.any(axis=0))
        raise ValueError(f"{missing.size} images have no caption in caption_to_image "
                         f"(first: image {int(missing[0])})")
    metrics = {f"image_to_text_R@{k}": 100 * recall_at_k(scores.T, positives.T, k) for k in ks}
    metrics |= {f"text_to_image_R@{k}": 100 * recall_at_k(scores, positives, k) for k in ks}
    metrics["mean_recall"] = float(np.mean(list(metrics.values())))
    return metrics
