"""Sliding-window tiles over large scenes (Potsdam, Vaihingen, iSAID), as the paper's
per-dataset image counts imply (e.g. 512 px tiles for Potsdam/Vaihingen).

No stage of its own: the `parse` rule (formats/masks.py, formats/coco.py, option `tile`) and the
counting split of `eval_split` (`evaluation.counting.tile`) cut scenes with it; a tile is
recorded as a crop [x, y, w, h] of the original file, never written out.
"""

from __future__ import annotations


def _starts(length: int, size: int, stride: int) -> list[int]:
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:  # last tile flush with the border, not cut short
        starts.append(length - size)
    return starts


def tiles(width: int, height: int, size: int | None, overlap: int = 0) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) windows covering the image; the whole image when `size` is None or larger."""
    if not size:
        return [(0, 0, width, height)]
    if not 0 <= overlap < size:
        raise ValueError(f"tile overlap {overlap} must be in [0, tile size {size})")
    stride = size - overlap
    return [
        (x, y, min(size, width), min(size, height))
        for y in _starts(height, size, stride)
        for x in _starts(width, size, stride)
    ]
