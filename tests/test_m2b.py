"""Mask-to-Box against an independent oracle: connected components labelled by scipy
(8-connectivity, as border following treats foreground), each encoded as a pycocotools
RLE whose `toBbox` gives the expected box."""

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from scipy import ndimage

from remoteclip.m2b import class_boxes, mask_to_boxes


def oracle_boxes(binary: np.ndarray) -> list[tuple[int, int, int, int]]:
    labels, n = ndimage.label(binary, structure=np.ones((3, 3)))
    boxes = []
    for k in range(1, n + 1):
        rle = mask_utils.encode(np.asfortranarray((labels == k).astype(np.uint8)))
        x, y, w, h = mask_utils.toBbox(rle).astype(int).tolist()
        boxes.append((x, y, w, h))
    return sorted(boxes, key=lambda b: (b[1], b[0], b[3], b[2]))


def random_label_map(rng: np.random.Generator, h: int, w: int, classes: int) -> np.ndarray:
    """Blobs with holes, islands in holes, thin lines, single pixels, objects on the border
    and objects of different classes touching each other."""
    out = np.zeros((h, w), np.int32)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(rng.integers(3, 9)):
        c = int(rng.integers(1, classes + 1))
        cy, cx = rng.integers(-5, h + 5), rng.integers(-5, w + 5)
        r = rng.uniform(2, 12)
        d = np.hypot(yy - cy, xx - cx)
        ring = d < r
        if rng.random() < 0.5:  # a hole, sometimes with an island of the same class inside
            ring &= d > r / 2
            if rng.random() < 0.5:
                ring |= d < r / 5
        out[ring] = c
    for _ in range(rng.integers(0, 6)):  # single pixels, some on the border
        out[rng.integers(0, h), rng.integers(0, w)] = rng.integers(1, classes + 1)
    out[0, rng.integers(0, w)] = 1
    if rng.random() < 0.5:  # a diagonal thin line (8-connected only)
        for i in range(min(h, w) // 2):
            out[i, i] = 2
    return out


@pytest.mark.parametrize("seed", range(40))
def test_m2b_matches_oracle_on_random_masks(seed):
    rng = np.random.default_rng(seed)
    labels = random_label_map(rng, int(rng.integers(20, 70)), int(rng.integers(20, 70)), 3)
    got = mask_to_boxes(labels, ignore=[0])
    for value in range(1, 4):
        mine = [box for v, box in got if v == value]
        assert mine == oracle_boxes(labels == value), f"class {value}"


def test_island_inside_hole_is_its_own_box():
    m = np.zeros((30, 30), bool)
    m[5:25, 5:25] = True
    m[8:22, 8:22] = False
    m[13:16, 13:16] = True
    assert class_boxes(m) == [(5, 5, 20, 20), (13, 13, 3, 3)]


def test_touching_classes_stay_separate_and_same_class_merges():
    labels = np.zeros((10, 20), np.int32)
    labels[2:6, 2:8] = 1
    labels[2:6, 8:12] = 2  # touches class 1
    labels[6:8, 10:14] = 2  # touches the first class-2 block diagonally-adjacent -> one component
    got = mask_to_boxes(labels, ignore=[0])
    assert got == [(1, (2, 2, 6, 4)), (2, (8, 2, 6, 6))]


def test_border_and_single_pixels():
    m = np.zeros((8, 8), bool)
    m[0, 0] = m[7, 7] = m[0, 7] = True
    m[3:5, 0] = True
    assert class_boxes(m) == oracle_boxes(m) == [(0, 0, 1, 1), (7, 0, 1, 1), (0, 3, 1, 2), (7, 7, 1, 1)]


def test_min_area_and_ignore():
    labels = np.zeros((10, 10), np.int32)
    labels[0, 0] = 1
    labels[4:8, 4:8] = 1
    labels[1:3, 6:9] = 2
    assert mask_to_boxes(labels, ignore=[0], min_area=4) == [(1, (4, 4, 4, 4)), (2, (6, 1, 3, 2))]
    assert mask_to_boxes(labels, ignore=[0, 2]) == [(1, (0, 0, 1, 1)), (1, (4, 4, 4, 4))]
    assert class_boxes(np.zeros((5, 5), bool)) == []
