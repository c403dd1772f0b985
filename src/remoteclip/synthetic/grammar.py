"""Human-like captions for the demo's retrieval set.

This plays the annotators of RSICD/UCM: captions name the scene and describe objects
with vague or spelled-out quantities, in lower case ending with " .". Its wording is
deliberately different from the Box-to-Caption templates, so the demo can tell what a
model learns from each source.

Part of the `synthesize` rule: `writers.write_karpathy` puts these captions into the demo's
Karpathy JSON.
"""

from __future__ import annotations

import re

import numpy as np

SCENE_WORDS = {
    "airport": ["airport", "airfield"],
    "harbor": ["harbor", "port"],
    "parking lot": ["parking lot", "car park"],
    "highway": ["highway", "freeway"],
    "industrial area": ["industrial area", "factory district"],
    "storage tanks": ["tank farm", "oil depot"],
    "dense residential": ["dense residential area", "crowded neighbourhood"],
    "sparse residential": ["sparse residential area", "quiet suburb"],
    "forest": ["forest", "woodland"],
    "farmland": ["farmland", "cropland"],
    "meadow": ["meadow", "grassland"],
    "beach": ["beach", "seaside"],
    "desert": ["desert", "sandy wasteland"],
    "lake": ["lake", "pond"],
    "river": ["river", "waterway"],
    "playground": ["playground", "sports ground"],
    "roundabout": ["roundabout", "traffic circle"],
}

# how people name the objects (singular, plural)
NOUNS = {
    "plane": ("plane", "planes"),
    "helicopter": ("helicopter", "helicopters"),
    "ship": ("boat", "boats"),
    "storage tank": ("tank", "tanks"),
    "small vehicle": ("car", "cars"),
    "large vehicle": ("truck", "trucks"),
    "building": ("building", "buildings"),
    "tree": ("tree", "trees"),
    "swimming pool": ("pool", "pools"),
    "tennis court": ("tennis court", "tennis courts"),
    "basketball court": ("basketball court", "basketball courts"),
    "ground track field": ("running track", "running tracks"),
    "roundabout": ("roundabout", "roundabouts"),
    "bridge": ("bridge", "bridges"),
}
_SMALL = {1: ["a", "one"], 2: ["two"], 3: ["three", "a few"], 4: ["four", "several"]}

TEMPLATES = {
    "airport": [
        "{a_scene} with {q:plane} parked near the terminal .",
        "{q:plane} {be:plane} parked beside the runway of the {scene} .",
        "there is a long runway in the {scene} .",
        "this {scene} has a grey runway and green lawns .",
        "{q:plane} and a runway are in the {scene} .",
    ],
    "harbor": [
        "{q:ship} {be:ship} docked in the {scene} .",
        "{a_scene} with {q:ship} moored along the pier .",
        "many boats are in the water near the {scene} .",
        "the {scene} is next to the sea with some piers .",
        "{q:ship} {be:ship} floating on the dark water beside the {scene} .",
    ],
    "parking lot": [
        "{q:small vehicle} {be:small vehicle} parked in the {scene} .",
        "{a_scene} full of cars in rows .",
        "the {scene} is surrounded by green grass .",
        "lots of cars are parked neatly in the {scene} .",
        "{q:small vehicle} and {q:large vehicle} are in the {scene} .",
    ],
    "highway": [
        "{q:small vehicle} {be:small vehicle} driving on the {scene} .",
        "{a_scene} crosses the green fields .",
        "{q:large vehicle} and {q:small vehicle} are on the {scene} .",
        "a wide road runs through the {scene} area .",
        "some vehicles are moving along the {scene} .",
    ],
    "industrial area": [
        "{a_scene} with {q:building} and some trucks .",
        "large grey factories stand in the {scene} .",
        "{q:large vehicle} {be:large vehicle} parked in the {scene} .",
        "the {scene} has big buildings and a road .",
        "several warehouses are in the {scene} .",
    ],
    "storage tanks": [
        "{q:storage tank} {be:storage tank} in the {scene} .",
        "{a_scene} with {q:storage tank} .",
        "many white round tanks are arranged in the {scene} .",
        "the {scene} has {q:storage tank} on bare land .",
        "round oil tanks are gathered in the {scene} .",
    ],
    "dense residential": [
        "{q:building} {be:building} densely packed in the {scene} .",
        "{a_scene} with many houses along the roads .",
        "lots of houses are arranged neatly in the {scene} .",
        "two roads go through the {scene} .",
        "the houses of the {scene} stand close to each other .",
    ],
    "sparse residential": [
        "{q:building} {be:building} scattered in the {scene} .",
        "{a_scene} with {q:tree} and a few houses .",
        "some houses and green trees are in the {scene} .",
        "{q:swimming pool} {be:swimming pool} next to the houses .",
        "the houses of the {scene} are far apart on the lawn .",
    ],
    "forest": [
        "{a_scene} with dense green trees .",
        "many trees are growing in the {scene} .",
        "the {scene} is thick and dark green .",
        "the {scene} is full of trees .",
        "lots of trees cover the whole {scene} .",
    ],
    "farmland": [
        "{a_scene} with fields of different colours .",
        "the {scene} is divided into several pieces .",
        "some crops are growing in the {scene} .",
        "the {scene} has striped fields .",
        "several fields make up the {scene} .",
    ],
    "meadow": [
        "{a_scene} with green grass .",
        "the {scene} is a large piece of green grass .",
        "there is nothing but grass in the {scene} .",
        "the {scene} is green and flat .",
        "a few trees stand in the {scene} .",
    ],
    "beach": [
        "{a_scene} next to the blue sea .",
        "the yellow sand of the {scene} meets the water .",
        "waves wash the {scene} .",
        "the {scene} is a strip of sand beside the ocean .",
        "{q:ship} {be:ship} near the {scene} .",
    ],
    "desert": [
        "{a_scene} with yellow sand .",
        "the {scene} is covered with dunes .",
        "there is no plant in the {scene} .",
        "the {scene} is dry and sandy .",
        "some dunes are in the {scene} .",
    ],
    "lake": [
        "{a_scene} surrounded by {q:tree} .",
        "the {scene} is in the middle of green land .",
        "{a_scene} with dark blue water .",
        "some trees are around the {scene} .",
        "the water of the {scene} is calm .",
    ],
    "river": [
        "{a_scene} with {q:bridge} over it .",
        "{q:bridge} {be:bridge} across the {scene} .",
        "the {scene} winds through the fields .",
        "a long {scene} flows through the green land .",
        "{q:ship} {be:ship} on the {scene} .",
    ],
    "playground": [
        "{a_scene} with a red running track .",
        "{q:tennis court} {be:tennis court} beside the running track .",
        "the {scene} has a track and a green field .",
        "{a_scene} next to {q:tennis court} .",
        "a running track and some courts are in the {scene} .",
    ],
    "roundabout": [
        "{a_scene} where four roads meet .",
        "{q:small vehicle} {be:small vehicle} driving around the {scene} .",
        "the {scene} has a green island in the middle .",
        "{a_scene} at the crossing of two roads .",
        "roads lead into the round {scene} .",
    ],
}


def quantity(rng: np.random.Generator, n: int) -> str:
    if n in _SMALL:
        return str(rng.choice(_SMALL[n]))
    if n <= 7:
        return str(rng.choice(["several", "some"]))
    return str(rng.choice(["many", "lots of", "a large number of"]))


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def describe(rng: np.random.Generator, kind: str, counts: dict[str, int], n: int = 5) -> list[str]:
    """`n` distinct captions for a scene of type `kind` holding `counts` objects."""
    usable = [
        t for t in TEMPLATES[kind] if all(counts.get(cat, 0) > 0 for cat in re.findall(r"\{(?:q|be):([^}]+)\}", t))
    ]
    fallback = ["this is {a_scene} .", "it is {a_scene} .", "{a_scene} seen from above ."]
    order = list(rng.permutation(usable)) + list(rng.permutation(fallback))
    captions: list[str] = []
    for template in order:
        text = _fill(rng, template, kind, counts)
        if text not in captions:
            captions.append(text)
        if len(captions) == n:
            break
    return captions


def _fill(rng: np.random.Generator, template: str, kind: str, counts: dict[str, int]) -> str:
    scene = str(rng.choice(SCENE_WORDS[kind]))

    def sub(match: re.Match) -> str:
        op, _, arg = match.group(1).partition(":")
        if op == "scene":
            return scene
        if op == "a_scene":
            return _article(scene)
        n = counts[arg]
        if op == "be":
            return "is" if n == 1 else "are"
        singular, plural = NOUNS[arg]
        q = quantity(rng, n)
        return f"{q} {singular if n == 1 else plural}"

    return re.sub(r"\{([^}]+)\}", sub, template)
