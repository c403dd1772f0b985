"""Mask-to-Box (paper §III-B-2): per class, binary mask -> border following (Suzuki & Abe,
OpenCV `findContours`) -> one horizontal box per connected component.

The outer border of a component holds its extreme pixels, so its bounding rectangle is
the component's box; holes are ignored. `RETR_CCOMP` is used rather than
`RETR_EXTERNAL` because an island inside a hole of another component of the same class
is a component of its own: CCOMP reports it at the top level, EXTERNAL would drop it.

Stage: the `parse` rule of SEG datasets, through formats/masks.py (label images) and
formats/coco.py (`boxes: m2b`, the polygons rasterised per class); the boxes end up in
results/annotations/{dataset}.json.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np


def class_boxes(binary: np.ndarray, min_area: int = 0) -> list[tuple[int, int, int, int]]:
    """Boxes [x, y, w, h] (pixel-inclusive) of the 8-connected components of a binary mask."""
    binary = np.asarray(binary, dtype=bool)
    rows = np.flatnonzero(binary.any(axis=1))
    if rows.size == 0:
        return []
    cols = np.flatnonzero(binary.any(axis=0))
    # work on the occupied window only, with a zero border so components on the image
    # border are traced like any other
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    window = cv2.copyMakeBorder(binary[y0:y1, x0:x1].view(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    contours, hierarchy = cv2.findContours(window, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    for contour, (_, _, _, parent) in zip(contours, hierarchy[0]):
        if parent != -1:  # a hole's border
            continue
        x, y, w, h = cv2.boundingRect(contour)
        if w * h >= max(min_area, 1):
            boxes.append((int(x + x0 - 1), int(y + y0 - 1), int(w), int(h)))
    boxes.sort(key=lambda b: (b[1], b[0], b[3], b[2]))
    return boxes


def mask_to_boxes(
    labels: np.ndarray, classes: Iterable[int] | None = None, ignore: Iterable[int] = (), min_area: int = 0
) -> list[tuple[int, tuple[int, int, int, int]]]:
    """(class value, box) for every connected component of every class in a label map."""
    ignore = set(int(v) for v in ignore)
    values: Iterable[int]
    if classes is None:  # bincount is linear; np.unique would sort every pixel
        values = np.flatnonzero(np.bincount(labels.ravel())) if labels.min() >= 0 else np.unique(labels)
    else:
        values = classes
    out = []
    for value in sorted(int(v) for v in values):
        if value in ignore:
            continue
        for box in class_boxes(labels == value, min_area):
            out.append((value, box))
    return out
