"""Object models of the synthetic world: class-typical shape, colour and size.

Each model draws in a local frame (x along the object's length, centred at 0) and
returns its parts as polygons with colours; `place` rotates, translates and checks
that the object fits the allowed region without touching other objects.

Part of the `synthesize` rule; writes no files itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import cv2
import numpy as np

from .canvas import Canvas, Instance

Parts = list[tuple[np.ndarray, tuple]]


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def _ellipse(rx: float, ry: float, n: int = 20, cx: float = 0, cy: float = 0) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1).astype(np.float32)


def _shade(colour, factor: float) -> tuple:
    return tuple(float(np.clip(c * factor, 0, 1)) for c in colour)


def _pick(rng: np.random.Generator, palette: list[tuple]) -> tuple:
    base = np.array(palette[rng.integers(len(palette))], np.float32)
    return tuple(np.clip(base * rng.uniform(0.92, 1.08, 3), 0, 1).tolist())


CAR_COLOURS = [
    (0.9, 0.9, 0.9),
    (0.1, 0.1, 0.12),
    (0.6, 0.6, 0.62),
    (0.7, 0.1, 0.1),
    (0.15, 0.25, 0.6),
    (0.85, 0.8, 0.2),
    (0.3, 0.45, 0.3),
    (0.95, 0.95, 0.98),
]
ROOF_COLOURS = [(0.65, 0.28, 0.2), (0.55, 0.55, 0.57), (0.45, 0.33, 0.25), (0.75, 0.72, 0.68), (0.3, 0.38, 0.5)]
HULL_COLOURS = [(0.92, 0.92, 0.92), (0.55, 0.57, 0.6), (0.6, 0.15, 0.12), (0.2, 0.22, 0.3)]


def plane(rng, L, W) -> Parts:
    c = _pick(rng, [(0.93, 0.93, 0.95), (0.8, 0.82, 0.85)])
    fw = max(1.5, 0.12 * L)
    body = np.array(
        [[-L / 2, -fw / 2], [0.38 * L, -fw / 2], [L / 2, 0], [0.38 * L, fw / 2], [-L / 2, fw / 2]], np.float32
    )
    wing = np.array(
        [
            [0.12 * L, -fw / 2],
            [-0.12 * L, -W / 2],
            [-0.22 * L, -W / 2],
            [-0.08 * L, 0],
            [-0.22 * L, W / 2],
            [-0.12 * L, W / 2],
            [0.12 * L, fw / 2],
        ],
        np.float32,
    )
    tail = np.array(
        [[-0.35 * L, 0], [-0.47 * L, -0.2 * W], [-L / 2, -0.2 * W], [-L / 2, 0.2 * W], [-0.47 * L, 0.2 * W]], np.float32
    )
    return [(wing, _shade(c, 0.95)), (tail, c), (body, c)]


def helicopter(rng, L, W) -> Parts:
    c = _pick(rng, [(0.25, 0.3, 0.25), (0.85, 0.85, 0.85), (0.7, 0.15, 0.1)])
    body = _ellipse(0.2 * L, 0.16 * W, cx=0.2 * L)
    boom = _rect(-L / 2, -0.04 * W, 0.1 * L, 0.04 * W)
    r = 0.44 * min(L, W)
    blade = np.array([[-r, -1], [r, -1], [r, 1], [-r, 1]], np.float32)
    rotors = [(blade @ _rot(a).T + [0.15 * L, 0]).astype(np.float32) for a in (np.pi / 4, -np.pi / 4)]
    return [(boom, c), (body, c)] + [(rotor, (0.2, 0.2, 0.2)) for rotor in rotors]


def ship(rng, L, W) -> Parts:
    c = _pick(rng, HULL_COLOURS)
    hull = np.array([[-L / 2, -W / 2], [0.28 * L, -W / 2], [L / 2, 0], [0.28 * L, W / 2], [-L / 2, W / 2]], np.float32)
    cabin = _rect(-0.42 * L, -0.3 * W, -0.1 * L, 0.3 * W)
    return [(hull, c), (cabin, _shade(c, 1.25 if sum(c) < 1.5 else 0.8))]


def storage_tank(rng, L, W) -> Parts:
    c = _pick(rng, [(0.9, 0.9, 0.88), (0.78, 0.78, 0.76), (0.85, 0.82, 0.7)])
    r = L / 2
    return [
        (_ellipse(r, r, 28), c),
        (_ellipse(0.7 * r, 0.7 * r, 24), _shade(c, 0.86)),
        (_ellipse(0.25 * r, 0.25 * r, 12), _shade(c, 0.7)),
    ]


def small_vehicle(rng, L, W) -> Parts:
    c = _pick(rng, CAR_COLOURS)
    return [
        (_rect(-L / 2, -W / 2, L / 2, W / 2), c),
        (_rect(0.05 * L, -W / 2 + 0.4, 0.3 * L, W / 2 - 0.4), _shade(c, 0.45)),
    ]


def large_vehicle(rng, L, W) -> Parts:
    c = _pick(rng, [(0.92, 0.92, 0.92), (0.7, 0.7, 0.72), (0.8, 0.55, 0.2), (0.25, 0.4, 0.6)])
    cab = _pick(rng, CAR_COLOURS)
    return [(_rect(-L / 2, -W / 2, 0.25 * L, W / 2), c), (_rect(0.3 * L, -W / 2, L / 2, W / 2), cab)]


def building(rng, L, W) -> Parts:
    c = _pick(rng, ROOF_COLOURS)
    return [(_rect(-L / 2, -W / 2, L / 2, 0), c), (_rect(-L / 2, 0, L / 2, W / 2), _shade(c, 0.8))]


def tree(rng, L, W) -> Parts:
    c = _pick(rng, [(0.16, 0.36, 0.12), (0.2, 0.42, 0.16), (0.12, 0.3, 0.1)])
    r = L / 2
    t = np.linspace(0, 2 * np.pi, 14, endpoint=False)
    rad = r * rng.uniform(0.8, 1.0, t.size)
    crown = np.stack([rad * np.cos(t), rad * np.sin(t)], 1).astype(np.float32)
    return [(crown, c), (_ellipse(0.45 * r, 0.45 * r, 10, -0.15 * r, -0.15 * r), _shade(c, 1.3))]


def swimming_pool(rng, L, W) -> Parts:
    water = _pick(rng, [(0.3, 0.75, 0.9), (0.2, 0.6, 0.85)])
    return [
        (_rect(-L / 2, -W / 2, L / 2, W / 2), (0.92, 0.92, 0.9)),
        (_rect(-L / 2 + 1, -W / 2 + 1, L / 2 - 1, W / 2 - 1), water),
    ]


def tennis_court(rng, L, W) -> Parts:
    c = _pick(rng, [(0.25, 0.5, 0.32), (0.7, 0.36, 0.22), (0.25, 0.4, 0.65)])
    white = (0.95, 0.95, 0.95)
    line = 0.5
    return [
        (_rect(-L / 2, -W / 2, L / 2, W / 2), white),
        (_rect(-L / 2 + line, -W / 2 + line, L / 2 - line, W / 2 - line), c),
        (_rect(-0.4, -W / 2, 0.4, W / 2), white),
        (_rect(-0.25 * L, -0.3, 0.25 * L, 0.3), white),
    ]


def basketball_court(rng, L, W) -> Parts:
    c = _pick(rng, [(0.75, 0.5, 0.3), (0.3, 0.45, 0.6)])
    white = (0.95, 0.95, 0.95)
    return [
        (_rect(-L / 2, -W / 2, L / 2, W / 2), white),
        (_rect(-L / 2 + 0.6, -W / 2 + 0.6, L / 2 - 0.6, W / 2 - 0.6), c),
        (_ellipse(0.15 * W, 0.15 * W, 12), white),
        (_ellipse(0.09 * W, 0.09 * W, 12), c),
    ]


def ground_track_field(rng, L, W) -> Parts:
    track = _pick(rng, [(0.62, 0.27, 0.2), (0.45, 0.5, 0.6)])
    r = W / 2
    t = np.linspace(-np.pi / 2, np.pi / 2, 12)
    right = np.stack([L / 2 - r + r * np.cos(t), r * np.sin(t)], 1)
    left = np.stack([-(L / 2 - r) - r * np.cos(t), -r * np.sin(t)], 1)
    outer = np.concatenate([right, left]).astype(np.float32)
    inner = (outer * np.array([(L / 2 - 0.2 * W) / (L / 2), 0.6], np.float32)).astype(np.float32)
    return [(outer, track), (inner, (0.3, 0.55, 0.28))]


def roundabout(rng, L, W) -> Parts:
    r = L / 2
    return [(_ellipse(r, r, 28), (0.34, 0.34, 0.36)), (_ellipse(0.55 * r, 0.55 * r, 24), (0.3, 0.5, 0.25))]


def bridge(rng, L, W) -> Parts:
    c = _pick(rng, [(0.7, 0.7, 0.68), (0.55, 0.55, 0.55)])
    return [(_rect(-L / 2, -W / 2, L / 2, W / 2), c), (_rect(-L / 2, -0.2, L / 2, 0.2), (0.9, 0.9, 0.6))]


@dataclasses.dataclass(frozen=True)
class Model:
    draw: Callable
    length: tuple[float, float]  # px
    aspect: tuple[float, float]  # width / length
    shadow: float = 0.0  # shadow offset as a fraction of the length
    square: bool = False  # width follows length exactly (round things)


MODELS: dict[str, Model] = {
    "plane": Model(plane, (13, 22), (0.9, 1.0), 0.12),
    "helicopter": Model(helicopter, (9, 12), (0.9, 1.0), 0.1),
    "ship": Model(ship, (11, 26), (0.22, 0.32), 0.05),
    "storage tank": Model(storage_tank, (7, 15), (1, 1), 0.18, True),
    "small vehicle": Model(small_vehicle, (4.5, 6), (0.45, 0.55), 0.1),
    "large vehicle": Model(large_vehicle, (9, 14), (0.3, 0.38), 0.1),
    "building": Model(building, (9, 22), (0.55, 0.9), 0.18),
    "tree": Model(tree, (5, 11), (1, 1), 0.25, True),
    "swimming pool": Model(swimming_pool, (7, 12), (0.5, 0.7), 0.0),
    "tennis court": Model(tennis_court, (14, 18), (0.48, 0.52), 0.0),
    "basketball court": Model(basketball_court, (12, 15), (0.55, 0.6), 0.0),
    "ground track field": Model(ground_track_field, (40, 56), (0.5, 0.58), 0.0),
    "roundabout": Model(roundabout, (16, 26), (1, 1), 0.0, True),
    "bridge": Model(bridge, (24, 60), (0.12, 0.2), 0.04),
}


def _rot(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]], np.float32)


def place(
    canvas: Canvas,
    rng: np.random.Generator,
    category: str,
    allowed: np.ndarray,
    angle: float | None = None,
    length: float | None = None,
    center: tuple[float, float] | None = None,
    margin: int = 2,
    tries: int = 40,
    scale: float = 1.0,
) -> Instance | None:
    """Put one object of `category` where its oriented box lies inside `allowed` and at
    least `margin` px away from every other object; None when no spot was found."""
    model = MODELS[category]
    for _ in range(tries):
        L = (length or rng.uniform(*model.length)) * scale
        W = L if model.square else L * rng.uniform(*model.aspect)
        theta = rng.uniform(0, 2 * np.pi) if angle is None else angle + rng.normal(0, 0.03)
        R = _rot(theta)
        if center is None:
            cx, cy = rng.uniform(0, canvas.w), rng.uniform(0, canvas.h)
        else:
            cx, cy = center[0] + rng.normal(0, 0.5), center[1] + rng.normal(0, 0.5)
        # clockwise on screen from the object's front-left corner, as DOTA orders vertices
        corners = np.array([[L / 2, -W / 2], [L / 2, W / 2], [-L / 2, W / 2], [-L / 2, -W / 2]], np.float32)
        polygon = corners @ R.T + [cx, cy]
        if not _fits(canvas, polygon, allowed, margin):
            continue
        parts = [(pts @ R.T + [cx, cy], colour) for pts, colour in model.draw(rng, L, W)]
        off = np.array([1, 1], np.float32) * model.shadow * L
        shadow = [pts + off for pts, _ in parts] if model.shadow else None
        return canvas.add(category, polygon, parts, shadow, {"length": L, "width": W, "angle": theta})
    return None


def _fits(canvas: Canvas, polygon: np.ndarray, allowed: np.ndarray, margin: int) -> bool:
    if polygon[:, 0].min() < 0 or polygon[:, 1].min() < 0:
        return False
    if polygon[:, 0].max() > canvas.w - 1 or polygon[:, 1].max() > canvas.h - 1:
        return False
    x0, y0 = np.floor(polygon.min(0)).astype(int) - margin
    x1, y1 = np.ceil(polygon.max(0)).astype(int) + margin + 1
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, canvas.w), min(y1, canvas.h)
    local = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(local, [np.round(polygon - [x0, y0]).astype(np.int32)], 1)
    inside = local.astype(bool)
    if not allowed[y0:y1, x0:x1][inside].all():
        return False
    grown = cv2.dilate(local, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)).astype(bool)
    return not (canvas.instances[y0:y1, x0:x1][grown] != 0).any()
