"""Box-to-Caption (paper §III-B-1): five rule-based captions per image from its boxes.

- Captions 1-2, by location: the objects whose box centre lies in the central region
  (default: the middle third of each axis) and the objects outside it. When one side is
  empty, its caption says so with an `*_empty` template, so the caption stays true and
  still carries the layout.
- Captions 3-5, by counts: each picks 1 to `count_max_categories` categories at random
  (templates `count.single` for one, `count.multiple` for more, plus `count.pair` for
  exactly two) and states how many boxes of each the image holds; counts above `max_number` (ten in the
  paper) become a quantifier ("many", "a lot of", ...).
- An image without boxes gets no captions; the caller counts it.

Templates and quantifiers come from a YAML file (config), never from code. Randomness is
seeded per image from (seed, dataset, image key), so captions do not depend on the order
or the process in which images are captioned.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from .formats.base import Box
from .schema import defaults
from .vocabulary import NUMBER_WORDS, count_phrase, plural

_DEFAULTS = defaults("b2c")
_REQUIRED = {"quantifiers": list, "location": dict, "count": dict}
_REQUIRED_LOCATION = ("center", "edge", "center_empty", "edge_empty")
_REQUIRED_COUNT = ("single", "multiple")


class TemplateError(ValueError):
    pass


@dataclasses.dataclass
class B2CSettings:
    templates: dict[str, Any]
    center_region: tuple[float, float] = tuple(_DEFAULTS["center_region"])
    max_number: int = _DEFAULTS["max_number"]
    number_style: str = _DEFAULTS["number_style"]  # digits or words
    location_max_categories: int = _DEFAULTS["location_max_categories"]
    count_max_categories: int = _DEFAULTS["count_max_categories"]
    seed: int = _DEFAULTS["seed"]

    def __post_init__(self):
        lo, hi = self.center_region
        if not 0 <= lo < hi <= 1:
            raise ValueError(f"b2c center_region must satisfy 0 <= lo < hi <= 1, got {self.center_region}")
        if self.number_style not in ("digits", "words"):
            raise ValueError(f"b2c number_style must be 'digits' or 'words', got {self.number_style!r}")
        if self.number_style == "words" and self.max_number >= len(NUMBER_WORDS):
            raise ValueError(f"b2c number_style 'words' supports max_number < {len(NUMBER_WORDS)}")


def load_templates(path: str | Path) -> dict[str, Any]:
    """Read and check a template file; errors name the file and the missing part."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"{path}: cannot read B2C templates ({exc})") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: expected a mapping with {', '.join(_REQUIRED)}")
    for key, kind in _REQUIRED.items():
        if not isinstance(data.get(key), kind) or not data[key]:
            raise TemplateError(f"{path}: '{key}' must be a non-empty {kind.__name__}")
    for section, keys in (("location", _REQUIRED_LOCATION), ("count", _REQUIRED_COUNT)):
        for key in keys:
            entries = data[section].get(key)
            if not isinstance(entries, list) or not entries or not all(isinstance(t, str) for t in entries):
                raise TemplateError(f"{path}: '{section}.{key}' must be a non-empty list of strings")
            needs_objects = not key.endswith("_empty")
            for t in entries:
                if needs_objects and "{objects}" not in t:
                    raise TemplateError(f"{path}: template {t!r} in '{section}.{key}' lacks {{objects}}")
    return data


def object_phrase(counts: list[tuple[str, int]], settings: B2CSettings, rng: random.Random) -> str:
    """'4 large vehicles, a small vehicle and many planes'."""
    words = NUMBER_WORDS if settings.number_style == "words" else None
    parts = []
    for category, n in counts:
        if n > settings.max_number:
            parts.append(f"{rng.choice(settings.templates['quantifiers'])} {plural(category)}")
        else:
            parts.append(count_phrase(n, category, words))
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _sentence(template: str, counts: list[tuple[str, int]], settings: B2CSettings, rng: random.Random) -> str:
    single = len(counts) == 1 and counts[0][1] == 1
    text = template.format(objects=object_phrase(counts, settings, rng) if counts else "", be="is" if single else "are")
    text = " ".join(text.split())
    return text[:1].upper() + text[1:]


def _ranked(counter: Counter, limit: int) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def in_center(box: Box, width: float, height: float, region: tuple[float, float]) -> bool:
    cx, cy = box.center
    lo, hi = region
    return lo * width <= cx <= hi * width and lo * height <= cy <= hi * height


def image_rng(settings: B2CSettings, dataset: str, key: str) -> random.Random:
    return random.Random(f"{settings.seed}:{dataset}:{key}")


def captions_for(
    boxes: list[Box], width: float, height: float, settings: B2CSettings, rng: random.Random
) -> list[str] | None:
    """Five captions, or None for an image without boxes."""
    if not boxes:
        return None
    t = settings.templates
    center = Counter(b.category for b in boxes if in_center(b, width, height, settings.center_region))
    edge = Counter(b.category for b in boxes) - center
    captions = []
    for side, counter in (("center", center), ("edge", edge)):
        if counter:
            captions.append(
                _sentence(
                    rng.choice(t["location"][side]), _ranked(counter, settings.location_max_categories), settings, rng
                )
            )
        else:
            captions.append(_sentence(rng.choice(t["location"][f"{side}_empty"]), [], settings, rng))
    total = Counter(b.category for b in boxes)
    categories = sorted(total)
    for _ in range(3):
        for _attempt in range(10):
            k = rng.randint(1, min(settings.count_max_categories, len(categories)))
            chosen = rng.sample(categories, k)
            pool = (
                t["count"]["single"] if k == 1 else t["count"]["multiple"] + (t["count"].get("pair") or []) * (k == 2)
            )
            text = _sentence(rng.choice(pool), [(c, total[c]) for c in chosen], settings, rng)
            if text not in captions:
                break
        captions.append(text)
    return captions
