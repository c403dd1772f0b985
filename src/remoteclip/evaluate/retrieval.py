"""Cross-modal retrieval (RSITMD, RSICD, UCM) as the official RemoteCLIP `retrieval.py`.

That script reads the Karpathy test split, capitalises each raw caption, groups the captions
of each image (images de-duplicated and sorted by `np.unique`), scores every caption against
every image (`texts_emb @ images_emb.t()`, float32) and calls CLIP_benchmark's `recall_at_k`:
a query is a hit when at least one of its positives is among its k best-scoring candidates,
averaged over queries, x100. The mean recall is the mean of the six numbers.

Exact ties are common: identical captions of different images (UCM-Captions has about 2,031
distinct sentences among 10,500; the demo 371 among 1,500) get identical embeddings, so an
image scores them equally. Which of them lands inside the top k is then the tie order's
choice. Two orders are offered (`tie_order`):

- "topk" (default): `torch.topk` over each query's row of the float32 score matrix, the order
  of CLIP_benchmark's `recall_at_k` that produced the published numbers. torch does not
  specify it; it depends on the row length and k (and may differ between CPU and CUDA).
- "stable": equal scores keep their index order (the first k of a stable descending sort).

Whatever the order, every result records per metric how many queries' hit or miss depends on
it and the lowest and highest R@k any tie order could give (`recall_bounds`).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..schema import defaults
from ._common import as_labels, as_matrix, check_same_dims, stable_rank, to_numpy

log = logging.getLogger(__name__)

TIE_ORDERS = {
    "topk": "torch.topk over each query's row of the float32 score matrix (CLIP_benchmark's recall_at_k, "
    "as the official retrieval.py calls it)",
    "stable": "equal scores keep their index order (stable descending sort)",
}
DEFAULT_TIE_ORDER = defaults("evaluation.retrieval")["tie_order"]
_ROWS_PER_CHUNK = 1024  # rows of the score matrix ranked at once (memory), as CLIP_benchmark's batchify


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


def check_tie_order(tie_order: str) -> None:
    if tie_order not in TIE_ORDERS:
        raise ValueError(f"unknown tie order {tie_order!r}: expected one of {sorted(TIE_ORDERS)}")


def _checked(scores, positives, k) -> tuple[np.ndarray, np.ndarray, int]:
    scores = as_matrix(scores, "scores", dtype=None)
    positives = to_numpy(positives, "positives")
    if positives.shape != scores.shape or positives.dtype != bool:
        raise ValueError(
            f"positives: expected a bool array of shape {scores.shape}, got {positives.dtype} {positives.shape}"
        )
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    empty = ~positives.any(axis=1)
    if empty.any():
        first = int(np.flatnonzero(empty)[0])
        raise ValueError(f"{int(empty.sum())} query rows have no positive (first: row {first})")
    return scores, positives, min(int(k), scores.shape[1])


def query_hits(scores, positives, k: int, tie_order: str = DEFAULT_TIE_ORDER) -> np.ndarray:
    """Per query (row): is at least one positive among its k best-scoring candidates?

    A `k` above the number of candidates is clipped (every query then hits). A row without
    any positive has no defined recall and raises (CLIP_benchmark would count it as a miss).
    """
    check_tie_order(tie_order)
    scores, positives, k = _checked(scores, positives, k)
    if tie_order == "stable":
        return _best_positive_rank(scores, positives) < k
    hits = []
    for start in range(0, scores.shape[0], _ROWS_PER_CHUNK):
        rows = torch.from_numpy(np.ascontiguousarray(scores[start : start + _ROWS_PER_CHUNK]))
        top = torch.topk(rows, k, dim=1).indices.numpy()
        hits.append(np.take_along_axis(positives[start : start + _ROWS_PER_CHUNK], top, axis=1).any(axis=1))
    return np.concatenate(hits)


def recall_at_k(scores, positives, k: int, tie_order: str = DEFAULT_TIE_ORDER) -> float:
    """Fraction of queries (rows) with at least one positive among their top-k candidates."""
    return float(query_hits(scores, positives, k, tie_order).mean())


def _best_positive_rank(scores: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Rank of each row's first-ranked positive under the stable order: the best-scoring one,
    lowest index among ties."""
    best = np.where(positives, scores, -np.inf).max(axis=1, keepdims=True)
    first = np.argmax(positives & (scores == best), axis=1)
    return stable_rank(scores, first)


def recall_bounds(scores, positives, k: int) -> dict[str, float | int]:
    """What any order of exact ties could make of R@k: {"lowest", "highest"} (x100) and
    "tie_dependent" (queries whose hit or miss depends on the order).

    With s the best score among a query's positives, `above` the candidates scoring more
    than s and `tied` the non-positive candidates scoring exactly s: the query hits under
    every order when above + tied < k, under none when above >= k, and otherwise only when
    the order puts a positive first among those tied.
    """
    scores, positives, k = _checked(scores, positives, k)
    best = np.where(positives, scores, -np.inf).max(axis=1, keepdims=True)
    above = (scores > best).sum(axis=1)
    tied = ((scores == best) & ~positives).sum(axis=1)
    always, possible = above + tied < k, above < k
    return {
        "lowest": float(100 * always.mean()),
        "highest": float(100 * possible.mean()),
        "tie_dependent": int((possible & ~always).sum()),
    }


def score_matrix(image_features, text_features) -> np.ndarray:
    """float32 (texts, images) cosine scores, as the official script: `texts_emb @ images_emb.t()`.

    Features that are already unit vectors (as cached: `F.normalize` of the embeddings, the
    official script's own step) are used bit for bit; others are normalised first.
    """
    images = _unit_rows(as_matrix(image_features, "image_features", dtype=None), "image_features")
    texts = _unit_rows(as_matrix(text_features, "text_features", dtype=None), "text_features")
    check_same_dims(images, texts, "image_features", "text_features")
    return (torch.from_numpy(texts) @ torch.from_numpy(images).T).numpy()


def _unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x.astype(np.float64), axis=1)
    if (norms == 0).any():
        raise ValueError(f"{name}: {int((norms == 0).sum())} all-zero vector(s) cannot be L2-normalised")
    if np.abs(norms - 1).max() <= 1e-4:
        return x
    return torch.nn.functional.normalize(torch.from_numpy(x), dim=-1).numpy()


def retrieval_metrics(
    image_features, text_features, caption_to_image, ks=(1, 5, 10), tie_order: str = DEFAULT_TIE_ORDER
) -> dict:
    """R@k image->text and text->image and their mean, x100, plus the tie record.

    Keys: `image_to_text_R@{k}`, `text_to_image_R@{k}` for each k, `mean_recall` (the mean
    of all of them: of six numbers for the default ks), and `ties`: per R@k key the
    `recall_bounds` and, for the mean, its lowest and highest value. Image->text corresponds
    to CLIP_benchmark's `text_retrieval_recall@k`, text->image to `image_retrieval_recall@k`.
    """
    check_tie_order(tie_order)
    if not ks:
        raise ValueError("ks: at least one k is needed")
    scores = score_matrix(image_features, text_features)
    owner = as_labels(caption_to_image, "caption_to_image", scores.shape[0], scores.shape[1])
    positives = np.zeros(scores.shape, dtype=bool)
    positives[np.arange(len(owner)), owner] = True
    if not positives.any(axis=0).all():
        missing = np.flatnonzero(~positives.any(axis=0))
        raise ValueError(f"{missing.size} images have no caption in caption_to_image (first: image {int(missing[0])})")
    if scores.shape[1] > 1 and (scores == scores[:1]).all():
        raise ValueError(
            f"all {scores.shape[0]} captions score every image alike (identical caption embeddings): "
            "retrieval cannot tell the images apart; is every caption of the split the same?"
        )
    directions = {"image_to_text": (scores.T, positives.T), "text_to_image": (scores, positives)}
    metrics, ties = {}, {}
    for direction, (s, p) in directions.items():
        for k in ks:
            metrics[f"{direction}_R@{k}"] = 100 * recall_at_k(s, p, k, tie_order)
            ties[f"{direction}_R@{k}"] = recall_bounds(s, p, k)
    metrics["mean_recall"] = float(np.mean(list(metrics.values())))
    ties["mean_recall"] = {
        "lowest": float(np.mean([t["lowest"] for t in ties.values()])),
        "highest": float(np.mean([t["highest"] for t in ties.values()])),
    }
    return metrics | {"ties": ties}
