"""Raster primitives of the synthetic world: noise, textures and a canvas that tracks
which pixel belongs to which ground type and which object instance.

Everything is drawn with OpenCV without anti-aliasing into the label maps, so masks
and boxes are exact; the image itself is softened afterwards.

Part of the `synthesize` rule; writes no files itself.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

# Ground kinds. The index is what `Canvas.ground` stores.
GROUNDS = ("grass", "crop", "water", "road", "concrete", "sand", "soil", "forest", "nodata")
G = {name: i for i, name in enumerate(GROUNDS)}

_GROUND_RGB = {
    "grass": (0.36, 0.52, 0.25),
    "crop": (0.55, 0.58, 0.30),
    "water": (0.12, 0.27, 0.38),
    "road": (0.34, 0.34, 0.36),
    "concrete": (0.63, 0.62, 0.59),
    "sand": (0.84, 0.77, 0.57),
    "soil": (0.52, 0.40, 0.28),
    "forest": (0.13, 0.27, 0.11),
    "nodata": (0.0, 0.0, 0.0),
}


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Band-limited noise in [-1, 1]: random values on a coarse grid, cubic upsampling."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    up = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(up / 2.0, -1.0, 1.0)


def texture(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    """An HxWx3 float image of one ground kind, with colour drift and grain."""
    base = np.array(_GROUND_RGB[kind], np.float32) * rng.uniform(0.88, 1.12, 3).astype(np.float32)
    img = np.broadcast_to(base, (h, w, 3)).copy()
    if kind == "nodata":
        return img * 0
    strength = {"water": 0.06, "road": 0.04, "concrete": 0.05, "sand": 0.07}.get(kind, 0.10)
    img *= 1 + strength * smooth_noise(rng, h, w, 16)[..., None]
    img *= 1 + 0.04 * rng.standard_normal((h, w, 1)).astype(np.float32)
    if kind == "crop":
        img = _crop_stripes(rng, img)
    elif kind == "forest":
        img *= 1 + 0.25 * smooth_noise(rng, h, w, 3)[..., None]
    elif kind == "water":
        img[..., 2] *= 1 + 0.05 * smooth_noise(rng, h, w, 5)
    return img


def _crop_stripes(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(3, 7)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * phase)
    tint = np.array([rng.uniform(0.9, 1.25), rng.uniform(0.85, 1.1), rng.uniform(0.6, 0.9)], np.float32)
    return img * (1 - 0.25 * stripes[..., None]) * tint


@dataclasses.dataclass
class Instance:
    """One object: its class, its oriented box (4 corners, clockwise), and its id in
    `Canvas.instances` (pixels still visible after everything else was drawn)."""

    category: str
    polygon: np.ndarray  # (4, 2) float, clockwise from the object's front-left corner
    ident: int
    attributes: dict = dataclasses.field(default_factory=dict)


class Canvas:
    """An image plus its ground map and instance map, drawn in layers."""

    def __init__(self, h: int, w: int):
        self.h, self.w = h, w
        self.image = np.zeros((h, w, 3), np.float32)
        self.ground = np.zeros((h, w), np.uint8)
        self.instances = np.zeros((h, w), np.int32)
        self.objects: list[Instance] = []

    # ground
    def paint_ground(self, rng: np.random.Generator, kind: str, region: np.ndarray | None = None) -> None:
        tex = texture(rng, kind, self.h, self.w)
        if region is None:
            self.image[:] = tex
            self.ground[:] = G[kind]
        else:
            self.image[region] = tex[region]
            self.ground[region] = G[kind]

    def ground_mask(self, *kinds: str) -> np.ndarray:
        return np.isin(self.ground, [G[k] for k in kinds])

    # objects
    def free(self) -> np.ndarray:
        return self.instances == 0

    def add(
        self,
        category: str,
        polygon: np.ndarray,
        parts: list[tuple[np.ndarray, tuple]],
        shadow: list[np.ndarray] | None = None,
        attributes: dict | None = None,
    ) -> Instance:
        """Draw an object's shadow and parts (pixel polygons with colours); register its mask."""
        ident = len(self.objects) + 1
        if shadow:
            self._fill(shadow, None, darken=0.55)
        for points, colour in parts:
            self._fill(points, colour)
            cv2.fillPoly(self.instances, [np.round(points).astype(np.int32)], ident)
        inst = Instance(category, polygon.astype(np.float32), ident, attributes or {})
        self.objects.append(inst)
        return inst

    def _fill(self, points: np.ndarray | list[np.ndarray], colour: tuple | None, darken: float = 1.0) -> None:
        polygons = points if isinstance(points, list) else [points]
        mask = np.zeros((self.h, self.w), np.uint8)
        for poly in polygons:  # one call per polygon: fillPoly's even-odd rule would cut overlaps
            cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
        sel = mask.astype(bool)
        if colour is None:
            self.image[sel] *= darken
        else:
            self.image[sel] = np.asarray(colour, np.float32)

    def visible(self, inst: Instance) -> np.ndarray:
        return self.instances == inst.ident

    def finish(self, rng: np.random.Generator) -> np.ndarray:
        """Camera: slight blur, global exposure and tint, grain; uint8 RGB."""
        img = cv2.GaussianBlur(self.image, (0, 0), 0.6)
        img = img * rng.uniform(0.85, 1.15) * rng.uniform(0.94, 1.06, 3).astype(np.float32)
        img += 0.012 * rng.standard_normal(img.shape).astype(np.float32)
        img[self.ground == G["nodata"]] = 0
        return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
