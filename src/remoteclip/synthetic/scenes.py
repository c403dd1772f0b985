"""Scene recipes: ground layout plus objects, one function per scene type.

Scene types come in close pairs on purpose (dense vs sparse residential, meadow vs
farmland, lake vs river, parking lot vs highway, industrial area vs storage tanks,
desert vs beach) so that zero-shot classification of the demo does not saturate.

Part of the `synthesize` rule: a recipe returns a `Scene` (the image and its `Canvas` of ground
types and object instances), which a writer saves; nothing here touches the disk.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .canvas import Canvas
from .objects import place

REFERENCE_AREA = 128 * 128


@dataclasses.dataclass
class Scene:
    kind: str  # scene type, e.g. "airport"; "count" for counting images
    image: np.ndarray  # uint8 HxWx3
    canvas: Canvas
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def objects(self):
        return self.canvas.objects

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for obj in self.canvas.objects:
            out[obj.category] = out.get(obj.category, 0) + 1
        return out


# ---------------------------------------------------------------- layout helpers
def _coords(c: Canvas):
    yy, xx = np.mgrid[0 : c.h, 0 : c.w].astype(np.float32)
    return xx, yy


def half_plane(c: Canvas, rng, offset: float | None = None, angle: float | None = None) -> np.ndarray:
    xx, yy = _coords(c)
    a = rng.uniform(0, 2 * np.pi) if angle is None else angle
    d = (xx - c.w / 2) * np.cos(a) + (yy - c.h / 2) * np.sin(a)
    wobble = 3 * np.sin(((xx * np.sin(a) - yy * np.cos(a)) / rng.uniform(8, 20)) + rng.uniform(0, 6))
    o = rng.uniform(-0.25, 0.25) * min(c.h, c.w) if offset is None else offset
    return d + wobble > o


def strip(
    c: Canvas, rng, width: float, angle: float | None = None, offset: float | None = None, wobble: float = 0.0
) -> tuple[np.ndarray, float]:
    xx, yy = _coords(c)
    a = rng.uniform(0, np.pi) if angle is None else angle
    along = xx * np.cos(a) + yy * np.sin(a)
    d = -(xx - c.w / 2) * np.sin(a) + (yy - c.h / 2) * np.cos(a)
    o = rng.uniform(-0.2, 0.2) * min(c.h, c.w) if offset is None else offset
    if wobble:
        d = d + wobble * np.sin(along / rng.uniform(15, 30) + rng.uniform(0, 6))
    return np.abs(d - o) < width / 2, a


def blob(c: Canvas, rng, radius: float) -> np.ndarray:
    xx, yy = _coords(c)
    cx, cy = c.w / 2 + rng.uniform(-0.15, 0.15) * c.w, c.h / 2 + rng.uniform(-0.15, 0.15) * c.h
    rx, ry = radius * rng.uniform(0.8, 1.25), radius * rng.uniform(0.8, 1.25)
    r = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    from .canvas import smooth_noise

    return r + 0.25 * smooth_noise(rng, c.h, c.w, 12) < 1


def rect_mask(c: Canvas, x0, y0, x1, y1) -> np.ndarray:
    m = np.zeros((c.h, c.w), bool)
    m[int(max(0, y0)) : int(min(c.h, y1)), int(max(0, x0)) : int(min(c.w, x1))] = True
    return m


def road(
    c: Canvas, rng, width: float = 8, angle: float | None = None, offset: float | None = None
) -> tuple[np.ndarray, float]:
    m, a = strip(c, rng, width, angle, offset)
    c.paint_ground(rng, "road", m)
    # dashed centre line: image only, the ground stays "road"
    line, _ = strip(c, rng, 0.8, a, offset if offset is not None else None)
    xx, yy = _coords(c)
    dash = np.floor((xx * np.cos(a) + yy * np.sin(a)) / 3) % 2 == 0
    c.image[line & m & dash] = (0.85, 0.85, 0.8)
    return m, a


def n_scaled(rng, lo: int, hi: int, c: Canvas) -> int:
    """Object counts scale with the image area relative to a 128 px scene."""
    f = c.h * c.w / REFERENCE_AREA
    return int(rng.integers(max(0, round(lo * f)), max(1, round(hi * f)) + 1))


def scatter(c: Canvas, rng, category: str, n: int, allowed: np.ndarray, **kw) -> int:
    return sum(place(c, rng, category, allowed, **kw) is not None for _ in range(n))


def rows(c: Canvas, rng, category: str, allowed: np.ndarray, n: int, angle: float, spacing: float) -> int:
    """Objects parked side by side in rows along `angle` (parking lots, aprons)."""
    along = np.array([np.cos(angle), np.sin(angle)])
    across = np.array([-np.sin(angle), np.cos(angle)])
    reach = int(np.hypot(c.w, c.h) / 2 / min(spacing, 6)) + 1
    slots = [(i, j) for i in range(-reach, reach + 1) for j in range(-reach, reach + 1)]
    rng.shuffle(slots)
    step = spacing * rng.uniform(0.55, 0.8)
    centre = np.array([c.w / 2, c.h / 2]) + rng.uniform(-3, 3, 2)
    placed = 0
    for i, j in slots:
        if placed >= n:
            break
        x, y = centre + i * step * along + j * spacing * across
        if 0 <= x < c.w and 0 <= y < c.h and allowed[int(y), int(x)]:
            placed += (
                place(c, rng, category, allowed, angle=angle + np.pi / 2, center=(x, y), tries=1, margin=1) is not None
            )
    return placed


# ---------------------------------------------------------------- scene types
def airport(c, rng):
    c.paint_ground(rng, "grass")
    runway, a = strip(c, rng, rng.uniform(14, 20))
    c.paint_ground(rng, "road", runway)
    apron = half_plane(c, rng, angle=a + np.pi / 2, offset=rng.uniform(5, 20)) & ~runway
    apron &= ~half_plane(c, rng, angle=a + np.pi / 2, offset=rng.uniform(35, 50))
    c.paint_ground(rng, "concrete", apron)
    rows(c, rng, "plane", apron | runway, n_scaled(rng, 2, 8, c), a, 20)
    scatter(c, rng, "building", rng.integers(0, 2), c.ground_mask("concrete"), scale=1.5)
    scatter(c, rng, "small vehicle", rng.integers(0, 4), apron)


def harbor(c, rng):
    c.paint_ground(rng, "concrete")
    water = half_plane(c, rng)
    c.paint_ground(rng, "water", water)
    for _ in range(rng.integers(1, 3)):
        pier, _ = strip(c, rng, rng.uniform(5, 8))
        c.paint_ground(rng, "concrete", pier & water)
    scatter(c, rng, "ship", n_scaled(rng, 3, 10, c), c.ground_mask("water"), margin=2)
    scatter(c, rng, "large vehicle", rng.integers(0, 4), c.ground_mask("concrete"))
    scatter(c, rng, "storage tank", rng.integers(0, 3), c.ground_mask("concrete"))


def parking_lot(c, rng):
    c.paint_ground(rng, "grass")
    lot = rect_mask(
        c, rng.uniform(0, 0.2) * c.w, rng.uniform(0, 0.2) * c.h, rng.uniform(0.8, 1) * c.w, rng.uniform(0.8, 1) * c.h
    )
    c.paint_ground(rng, "road", lot)
    a = rng.choice([0, np.pi / 2]) + rng.normal(0, 0.05)
    rows(c, rng, "small vehicle", lot, n_scaled(rng, 12, 40, c), a, 8)
    scatter(c, rng, "large vehicle", rng.integers(0, 3), lot)
    scatter(c, rng, "tree", rng.integers(0, 6), ~lot)


def highway(c, rng):
    c.paint_ground(rng, rng.choice(["grass", "crop"]))
    m, a = road(c, rng, rng.uniform(16, 22))
    m2 = None
    if rng.random() < 0.4:
        m2, _ = road(c, rng, rng.uniform(8, 12), angle=a + rng.uniform(0.6, 1.2))
    lanes = m if m2 is None else m | m2
    scatter(c, rng, "small vehicle", n_scaled(rng, 5, 18, c), m, angle=a)
    scatter(c, rng, "large vehicle", n_scaled(rng, 1, 5, c), m, angle=a)
    scatter(c, rng, "tree", rng.integers(0, 6), ~lanes)


def industrial_area(c, rng):
    c.paint_ground(rng, "concrete")
    road(c, rng, rng.uniform(7, 10), angle=rng.choice([0, np.pi / 2]))
    free = c.ground_mask("concrete")
    scatter(c, rng, "building", n_scaled(rng, 2, 5, c), free, scale=1.7, angle=rng.choice([0, np.pi / 2]))
    scatter(c, rng, "storage tank", rng.integers(0, 4), free)
    scatter(c, rng, "large vehicle", n_scaled(rng, 2, 6, c), c.ground_mask("concrete", "road"))


def storage_tanks(c, rng):
    c.paint_ground(rng, rng.choice(["soil", "concrete"]))
    scatter(c, rng, "storage tank", n_scaled(rng, 5, 14, c), np.ones((c.h, c.w), bool), margin=2)
    scatter(c, rng, "building", rng.integers(0, 2), np.ones((c.h, c.w), bool))
    scatter(c, rng, "large vehicle", rng.integers(0, 2), np.ones((c.h, c.w), bool))


def dense_residential(c, rng):
    c.paint_ground(rng, "grass")
    a = rng.uniform(0, np.pi)
    for off in (-30, 30):
        road(c, rng, 7, angle=a, offset=off + rng.uniform(-5, 5))
    free = c.ground_mask("grass")
    scatter(c, rng, "building", n_scaled(rng, 12, 26, c), free, angle=a, margin=2, tries=60)
    scatter(c, rng, "tree", rng.integers(0, 5), free)
    scatter(c, rng, "small vehicle", rng.integers(1, 7), c.ground_mask("road"), angle=a)


def sparse_residential(c, rng):
    c.paint_ground(rng, "grass")
    _, a = road(c, rng, 7)
    free = c.ground_mask("grass")
    scatter(c, rng, "building", n_scaled(rng, 3, 7, c), free, angle=a + rng.normal(0, 0.3))
    scatter(c, rng, "swimming pool", rng.integers(0, 4), free)
    scatter(c, rng, "tree", n_scaled(rng, 8, 20, c), free)
    scatter(c, rng, "small vehicle", rng.integers(0, 3), c.ground_mask("road"), angle=a)


def forest(c, rng):
    c.paint_ground(rng, "forest")
    scatter(c, rng, "tree", n_scaled(rng, 40, 80, c), np.ones((c.h, c.w), bool), margin=1, tries=15)


def farmland(c, rng):
    c.paint_ground(rng, "crop")
    for _ in range(rng.integers(2, 5)):
        parcel = half_plane(c, rng) & half_plane(c, rng)
        c.paint_ground(rng, rng.choice(["crop", "soil", "crop"]), parcel)
    if rng.random() < 0.5:
        road(c, rng, 5)
    scatter(c, rng, "building", rng.integers(0, 2), c.ground_mask("crop", "soil"))


def meadow(c, rng):
    c.paint_ground(rng, "grass")
    if rng.random() < 0.5:
        c.paint_ground(rng, "grass", blob(c, rng, rng.uniform(20, 40)))
    scatter(c, rng, "tree", rng.integers(0, 5), np.ones((c.h, c.w), bool))


def beach(c, rng):
    c.paint_ground(rng, "sand")
    c.paint_ground(rng, "water", half_plane(c, rng))
    scatter(c, rng, "ship", rng.integers(0, 3), c.ground_mask("water"))
    scatter(c, rng, "building", rng.integers(0, 2), c.ground_mask("sand"))


def desert(c, rng):
    c.paint_ground(rng, "sand")
    if rng.random() < 0.6:
        c.paint_ground(rng, "soil", blob(c, rng, rng.uniform(15, 35)))
    xx, yy = _coords(c)
    a = rng.uniform(0, np.pi)
    dunes = np.sin((xx * np.cos(a) + yy * np.sin(a)) / rng.uniform(4, 8))
    c.image *= (1 + 0.12 * dunes)[..., None]


def lake(c, rng):
    c.paint_ground(rng, rng.choice(["grass", "forest"]))
    water = blob(c, rng, rng.uniform(30, 45) * np.sqrt(c.h * c.w / REFERENCE_AREA))
    c.paint_ground(rng, "water", water)
    scatter(c, rng, "tree", n_scaled(rng, 4, 15, c), ~water)
    scatter(c, rng, "ship", rng.integers(0, 2), water)


def river(c, rng):
    c.paint_ground(rng, rng.choice(["grass", "crop"]))
    water, a = strip(c, rng, rng.uniform(20, 32), wobble=4)
    c.paint_ground(rng, "water", water)
    for _ in range(rng.integers(1, 3)):
        span = rng.uniform(44, 60)
        if (
            place(
                c,
                rng,
                "bridge",
                np.ones((c.h, c.w), bool),
                angle=a + np.pi / 2,
                length=span,
                center=(c.w / 2 + rng.uniform(-0.3, 0.3) * c.w, c.h / 2 + rng.uniform(-0.3, 0.3) * c.h),
            )
            is None
        ):
            continue
    scatter(c, rng, "ship", rng.integers(0, 3), water, angle=a)
    scatter(c, rng, "tree", rng.integers(0, 8), ~water)


def playground(c, rng):
    c.paint_ground(rng, "grass")
    free = np.ones((c.h, c.w), bool)
    place(c, rng, "ground track field", free, angle=rng.choice([0, np.pi / 2]) + rng.normal(0, 0.1))
    scatter(c, rng, "tennis court", rng.integers(1, 5), free, angle=rng.choice([0, np.pi / 2]))
    scatter(c, rng, "basketball court", rng.integers(0, 3), free)
    scatter(c, rng, "tree", rng.integers(0, 6), free)


def roundabout_junction(c, rng):
    c.paint_ground(rng, rng.choice(["grass", "concrete"]))
    a = rng.uniform(0, np.pi)
    road(c, rng, 8, angle=a, offset=0)
    road(c, rng, 8, angle=a + np.pi / 2, offset=0)
    place(c, rng, "roundabout", np.ones((c.h, c.w), bool), center=(c.w / 2, c.h / 2))
    scatter(c, rng, "small vehicle", rng.integers(1, 8), c.ground_mask("road"))
    scatter(c, rng, "tree", rng.integers(0, 6), c.ground_mask("grass"))


SCENES = {
    "airport": airport,
    "harbor": harbor,
    "parking lot": parking_lot,
    "highway": highway,
    "industrial area": industrial_area,
    "storage tanks": storage_tanks,
    "dense residential": dense_residential,
    "sparse residential": sparse_residential,
    "forest": forest,
    "farmland": farmland,
    "meadow": meadow,
    "beach": beach,
    "desert": desert,
    "lake": lake,
    "river": river,
    "playground": playground,
    "roundabout": roundabout_junction,
}


def clutter(c: Canvas, rng, level: float) -> None:
    """Mixed scenes: a patch of foreign ground and a few stray objects."""
    if rng.random() < level:
        patch = blob(c, rng, rng.uniform(8, 18)) & (c.instances == 0)
        patch &= half_plane(c, rng, offset=rng.uniform(0.2, 0.45) * c.w)
        c.paint_ground(rng, rng.choice(["grass", "soil", "concrete", "sand"]), patch)
    if rng.random() < level:
        for category in rng.choice(["tree", "small vehicle", "building"], rng.integers(1, 3)):
            place(c, rng, str(category), c.free(), tries=10)


def mix_in(c: Canvas, rng, kind: str) -> None:
    """Mixed scenes: a 20-40 % slice of another scene type is pasted over this one. The
    scene keeps its label; objects of either scene cut by the slice are dropped from the
    object list, so counts used in captions stay true."""
    other = Canvas(c.h, c.w)
    SCENES[str(rng.choice([k for k in SCENES if k != kind]))](other, rng)
    region = half_plane(c, rng, offset=rng.uniform(0.1, 0.3) * min(c.h, c.w))
    c.image[region] = other.image[region]
    c.ground[region] = other.ground[region]
    keep = [o for o in c.objects if not (c.visible(o) & region).any()]
    c.instances[region] = 0
    c.objects = []
    for obj in keep:  # renumber the kept objects of this scene
        mask = c.instances == obj.ident
        obj.ident = len(c.objects) + 1
        c.instances[mask] = obj.ident
        c.objects.append(obj)
    for obj in other.objects:  # and add the other scene's objects that lie wholly in the slice
        mask = other.instances == obj.ident
        if mask.any() and not (mask & ~region).any():
            obj.ident = len(c.objects) + 1
            c.instances[mask] = obj.ident
            c.objects.append(obj)


def render_scene(
    rng: np.random.Generator, kind: str, size: int, clutter_level: float = 0.3, nodata: float = 0.0, mix: float = 0.0
) -> Scene:
    c = Canvas(size, size)
    SCENES[kind](c, rng)
    if mix and rng.random() < mix:
        mix_in(c, rng, kind)
    clutter(c, rng, clutter_level)
    if nodata and rng.random() < nodata:
        corner = half_plane(c, rng, offset=0.3 * size) & (c.instances == 0)
        c.ground[corner] = 8  # "nodata": black, as LoveDA's missing image borders
    return Scene(kind, c.finish(rng), c)


# ---------------------------------------------------------------- counting images
COUNT_BACKGROUND = {
    "plane": ("concrete", None),
    "helicopter": ("concrete", None),
    "ship": ("water", None),
    "storage tank": ("soil", "concrete"),
    "tennis court": ("grass", None),
    "basketball court": ("grass", "concrete"),
    "swimming pool": ("grass", None),
    "small vehicle": ("road", None),
    "large vehicle": ("road", "concrete"),
}


def render_count(rng: np.random.Generator, category: str, count: int, size: int, distractors: int = 2) -> Scene:
    """An image holding exactly `count` instances of `category` (RemoteCount-shaped)."""
    for scale in (1.0, 0.85, 0.7, 0.6, 0.5):
        c = Canvas(size, size)
        ground, other = COUNT_BACKGROUND[category]
        c.paint_ground(rng, ground)
        if other and rng.random() < 0.5:
            c.paint_ground(rng, other, half_plane(c, rng, offset=0.3 * size))
        allowed = np.ones((size, size), bool)
        placed = sum(place(c, rng, category, allowed, scale=scale, tries=60) is not None for _ in range(count))
        if placed == count:
            for other_cat in rng.choice(
                ["tree", "building", "small vehicle", "large vehicle"], rng.integers(0, distractors + 1)
            ):
                if other_cat != category:
                    place(c, rng, str(other_cat), allowed, tries=10)
            return Scene("count", c.finish(rng), c, {"category": category, "count": count})
    raise RuntimeError(f"could not place {count} x {category} on a {size}px image")
