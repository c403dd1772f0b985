"""Box-to-Caption properties: five captions, exact counts up to ten, a quantifier above,
the location split, determinism, and template checking."""

import random
import re

import pytest

from remoteclip.b2c import B2CSettings, TemplateError, captions_for, image_rng, in_center, load_templates
from remoteclip.formats.base import Box
from remoteclip.vocabulary import plural, singular

W = H = 120


def boxes_for(counts: dict[str, int], rng: random.Random, region=None) -> list[Box]:
    """Boxes of the given counts; with `region` ('center'/'edge') they all lie there."""
    out = []
    for cat, n in counts.items():
        for _ in range(n):
            if region == "center":
                cx, cy = rng.uniform(45, 75), rng.uniform(45, 75)
            elif region == "edge":
                cx, cy = rng.choice([rng.uniform(2, 35), rng.uniform(85, 118)]), rng.uniform(2, 118)
            else:
                cx, cy = rng.uniform(2, 118), rng.uniform(2, 118)
            out.append(Box(cx - 2, cy - 2, 4, 4, cat))
    return out


def stated_counts(caption: str, categories, settings) -> dict[str, str]:
    """What a caption says about each category: a digit string, 'a'/'an', or a quantifier."""
    found = {}
    text = caption.lower()
    quantifiers = "|".join(re.escape(q) for q in sorted(settings.templates["quantifiers"], key=len, reverse=True))
    for cat in sorted(categories, key=len, reverse=True):
        for noun in (plural(cat), singular(cat)):
            m = re.search(rf"(\d+|an?|{quantifiers}) {re.escape(noun)}\b", text)
            if m:
                found[cat] = m.group(1)
                text = text.replace(m.group(0), "")
                break
    return found


@pytest.mark.parametrize("seed", range(60))
def test_five_captions_with_exact_counts(seed, b2c_settings):
    rng = random.Random(seed)
    cats = rng.sample(["plane", "ship", "storage tank", "bus", "small vehicle", "person"], rng.randint(1, 4))
    counts = {c: rng.randint(1, 16) for c in cats}
    boxes = boxes_for(counts, rng)
    captions = captions_for(boxes, W, H, b2c_settings, random.Random(seed))
    assert len(captions) == 5 and all(c.strip() for c in captions)
    for caption in captions[2:]:  # the three count captions state image totals
        said = stated_counts(caption, counts, b2c_settings)
        assert said, caption
        for cat, value in said.items():
            n = counts[cat]
            if n == 1:
                assert value in ("a", "an"), caption
            elif n <= 10:
                assert value == str(n), caption
            else:
                assert value in b2c_settings.templates["quantifiers"], caption


@pytest.mark.parametrize("seed", range(30))
def test_location_captions_split_center_and_edge(seed, b2c_settings):
    rng = random.Random(seed)
    center = boxes_for({"ship": rng.randint(1, 5)}, rng, "center")
    edge = boxes_for({"plane": rng.randint(1, 5)}, rng, "edge")
    assert all(in_center(b, W, H, b2c_settings.center_region) for b in center)
    assert not any(in_center(b, W, H, b2c_settings.center_region) for b in edge)
    first, second = captions_for(center + edge, W, H, b2c_settings, random.Random(seed))[:2]
    assert "ship" in first and "plane" not in first
    assert "plane" in second and "ship" not in second
    assert stated_counts(first, ["ship"], b2c_settings)["ship"] in (str(len(center)), "a")
    assert stated_counts(second, ["plane"], b2c_settings)["plane"] in (str(len(edge)), "a")


def test_empty_side_says_so(b2c_settings):
    rng = random.Random(0)
    only_center = captions_for(boxes_for({"ship": 2}, rng, "center"), W, H, b2c_settings, random.Random(1))
    assert only_center[1] in b2c_settings.templates["location"]["edge_empty"]
    only_edge = captions_for(boxes_for({"ship": 2}, rng, "edge"), W, H, b2c_settings, random.Random(1))
    assert only_edge[0] in b2c_settings.templates["location"]["center_empty"]


def test_no_boxes_no_captions(b2c_settings):
    assert captions_for([], W, H, b2c_settings, random.Random(0)) is None


def test_same_seed_same_captions_other_seed_differs(b2c_settings):
    boxes = boxes_for({"ship": 3, "plane": 12, "bus": 1}, random.Random(3))
    a = captions_for(boxes, W, H, b2c_settings, image_rng(b2c_settings, "dota", "P0001.png"))
    b = captions_for(boxes, W, H, b2c_settings, image_rng(b2c_settings, "dota", "P0001.png"))
    assert a == b
    others = {
        tuple(captions_for(boxes, W, H, b2c_settings, image_rng(b2c_settings, "dota", f"P{i}.png"))) for i in range(10)
    }
    assert len(others) > 1


def test_plurals_and_articles_in_captions(b2c_settings):
    captions = captions_for(
        boxes_for({"bus": 3, "airplane": 1}, random.Random(0), "center"), W, H, b2c_settings, random.Random(0)
    )
    assert "3 buses" in captions[0] and "an airplane" in captions[0]


def test_words_number_style(b2c_settings):
    settings = B2CSettings(b2c_settings.templates, number_style="words")
    captions = captions_for(boxes_for({"ship": 4}, random.Random(0)), W, H, settings, random.Random(0))
    assert all("4" not in c for c in captions) and any("four ships" in c for c in captions)


def test_template_file_errors_name_the_file_and_part(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("quantifiers: [many]\nlocation: {center: ['in the middle .']}\ncount: {single: ['{objects}']}\n")
    with pytest.raises(TemplateError, match=r"t\.yaml.*location\.center.*lacks \{objects\}"):
        load_templates(bad)
    bad.write_text("quantifiers: []\n")
    with pytest.raises(TemplateError, match="quantifiers"):
        load_templates(bad)
    with pytest.raises(TemplateError, match="cannot read"):
        load_templates(tmp_path / "missing.yaml")


def test_settings_reject_bad_region(b2c_settings):
    with pytest.raises(ValueError, match="center_region"):
        B2CSettings(b2c_settings.templates, center_region=(0.7, 0.3))
