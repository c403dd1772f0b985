"""RemoteCount, reconstructed: object counting by caption ranking (paper §IV-B-2, Figs. 7-8).

The official set (947 DOTA-validation image-caption pairs, 13 classes, counts 1-10, checked by
hand) is unreleased, so we rebuild one from DOTA boxes: one sample per (window, class) whose
count lies in [min_count, max_count]. The image is scored against the ten captions
"There is one plane ..." ... "There are ten planes ..."; the best-scoring count is the
prediction, reported as top-1..top-10 accuracy and a row-normalised confusion matrix.

What is counted is what the model sees. A CLIP validation transform resizes the short side
and centre-crops a square, so on a 1200 x 600 scene the left and right thirds never reach the
model. Every sample is therefore a square the transform takes whole (any resize mode:
shortest + centre crop, squash, or longest + pad then agree on it), chosen by `square`:

- "center" (default): the central square of each window, the part the centre crop keeps;
  objects outside it are not counted, and a (window, class) pair with an object of that class
  cut by the square's border is skipped, since its count is ambiguous;
- "pad": the whole window, padded with black to a square (as open_clip's "longest" mode
  pads); every object in the window is counted.

A window is the whole image, or with `tile` each square tile of `tiling.tiles` (a tile is
itself square unless the image is smaller than the tile), with the same border rule.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from ..formats.base import Box, ImageRecord
from ..schema import defaults
from ..tiling import tiles
from ..vocabulary import NUMBER_WORDS, plural, singular
from ._common import as_labels, as_matrix, stable_rank

COUNT_CLASSES = (
    "plane",
    "helicopter",
    "roundabout",
    "bridge",
    "baseball diamond",
    "ground track field",
    "basketball court",
    "tennis court",
    "harbor",
    "soccer field",
    "swimming pool",
    "ship",
    "storage tank",
)
MAX_COUNT = 10
_DEFAULTS = defaults("evaluation.counting")
_EPS = 1e-6  # box coordinates are floats from polygon corners
log = logging.getLogger(__name__)


def count_captions(category: str, variant: str = "words") -> list[str]:
    """Captions for counts 1..10: "There is one plane in the image." ("digits": "There is 1 plane ...")."""
    if variant == "words":
        numbers = NUMBER_WORDS[1 : MAX_COUNT + 1]
    elif variant == "digits":
        numbers = tuple(str(n) for n in range(1, MAX_COUNT + 1))
    else:
        raise ValueError(f"unknown caption variant {variant!r}: expected 'words' or 'digits'")
    first = f"There is {numbers[0]} {singular(category)} in the image."
    return [first] + [f"There are {n} {plural(category)} in the image." for n in numbers[1:]]


SQUARE_POLICIES = {
    "center": "the central square of each window (what a centre-cropping transform keeps); objects outside "
    "it not counted, (window, class) pairs with an object cut by its border skipped",
    "pad": "each whole window padded with black to a square; every object in it counted",
}
DEFAULT_SQUARE = _DEFAULTS["square"]


def build_counting_set(
    records: Iterable[ImageRecord],
    classes: Sequence[str] | None = COUNT_CLASSES,
    min_count: int = _DEFAULTS["min_count"],
    max_count: int = _DEFAULTS["max_count"],
    tile: int | None = _DEFAULTS["tile"],
    square: str = DEFAULT_SQUARE,
    skips: Counter | None = None,
) -> list[dict]:
    """Samples {"image", "crop", "pad", "category", "count", "caption"} in record, window, class order.

    `crop` is the scored region [x, y, w, h] in the image file (offset by the record's own
    crop), or None for a whole square file; `pad` says the region is padded to a square before
    the model's transform. An object counts when its box lies fully inside the region; a
    (region, class) pair with an object of that class cut by the region's border is skipped.
    Skipped pairs are counted by reason in `skips` when given (a class absent from a region is
    not a skip). `classes=None` means COUNT_CLASSES.
    """
    classes = COUNT_CLASSES if classes is None else tuple(classes)
    _check_settings(classes, min_count, max_count, tile, square)
    skips = Counter() if skips is None else skips
    samples = []
    for record in records:
        for window in tiles(record.width, record.height, tile):
            region = central_square(window) if square == "center" else tuple(window)
            samples.extend(_window_samples(record, region, square == "pad", classes, min_count, max_count, skips))
    log.info("counting set: %d samples; skipped (window, class) pairs: %s", len(samples), dict(skips) or "none")
    return samples


def central_square(window) -> tuple[int, int, int, int]:
    """The largest square centred in an (x, y, w, h) window: what resize-short-side + centre crop keeps."""
    x, y, w, h = window
    side = min(w, h)
    return (x + (w - side) // 2, y + (h - side) // 2, side, side)


def _check_settings(classes, min_count, max_count, tile, square) -> None:
    if not classes:
        raise ValueError("counting set: no classes")
    if not 1 <= min_count <= max_count <= MAX_COUNT:
        raise ValueError(
            f"counting range [{min_count}, {max_count}] must lie within [1, {MAX_COUNT}] (one caption per count)"
        )
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise ValueError(f"tile must be a positive number of pixels or None, got {tile!r}")
    if square not in SQUARE_POLICIES:
        raise ValueError(f"unknown square policy {square!r}: expected one of {sorted(SQUARE_POLICIES)}")


def _window_samples(
    record: ImageRecord, region, pad: bool, classes, min_count, max_count, skips: Counter
) -> list[dict]:
    samples = []
    for category in classes:
        boxes = [b for b in record.boxes if b.category == category]
        inside = sum(_inside(b, region) for b in boxes)
        if any(_overlaps(b, region) and not _inside(b, region) for b in boxes):
            skips["object cut by the window border"] += 1
        elif inside and not min_count <= inside <= max_count:
            skips[f"count outside [{min_count}, {max_count}]"] += 1
        elif inside:
            samples.append(
                {
                    "image": record.file_name,
                    "crop": _crop(record, region),
                    "pad": pad and region[2] != region[3],
                    "category": category,
                    "count": inside,
                    "caption": count_captions(category)[inside - 1],
                }
            )
    return samples


def _inside(box: Box, window) -> bool:
    x, y, w, h = window
    return box.x >= x - _EPS and box.y >= y - _EPS and box.x + box.w <= x + w + _EPS and box.y + box.h <= y + h + _EPS


def _overlaps(box: Box, window) -> bool:
    x, y, w, h = window
    return box.x < x + w and box.x + box.w > x and box.y < y + h and box.y + box.h > y


def _crop(record: ImageRecord, window) -> list[int] | None:
    if record.crop is None and tuple(window) == (0, 0, record.width, record.height):
        return None
    ox, oy = (record.crop[0], record.crop[1]) if record.crop is not None else (0, 0)
    return [ox + window[0], oy + window[1], window[2], window[3]]


def counting_metrics(similarities, true_counts) -> dict:
    """{"top1".."top10" (x100), "confusion" (rows = true count, row-normalised), "support"}.

    Column j of `similarities` scores the caption for count j + 1. Top-k: the true count is
    among the k best-scoring counts, ties to the lower count (`_common`). The prediction of
    the confusion matrix is the top-1 count; rows without samples stay all zero.
    """
    scores = as_matrix(similarities, "similarities")
    n_counts = scores.shape[1]
    counts = as_labels(true_counts, "true_counts", scores.shape[0])
    if counts.min() < 1 or counts.max() > n_counts:
        raise ValueError(
            f"true_counts must lie in [1, {n_counts}] (one column per count), got {counts.min()}..{counts.max()}"
        )
    rank = stable_rank(scores, counts - 1)
    metrics = {f"top{k}": float((rank < k).mean() * 100) for k in range(1, n_counts + 1)}
    confusion = np.zeros((n_counts, n_counts))
    np.add.at(confusion, (counts - 1, np.argmax(scores, axis=1)), 1)
    support = confusion.sum(axis=1)
    confusion = np.divide(confusion, support[:, None], out=np.zeros_like(confusion), where=support[:, None] > 0)
    return metrics | {"confusion": confusion.tolist(), "support": support.astype(int).tolist()}
