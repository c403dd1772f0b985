"""One canonical class vocabulary for every source, plus the English needed to caption it."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from importlib import resources

import yaml

SEPARATORS = re.compile(r"[\s_\-]+")  # between the words of a label or class folder name
NUMBER_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
)  # NUMBER_WORDS[n] spells n
_IRREGULAR_PLURALS = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "foot": "feet",
    "tooth": "teeth",
    "mouse": "mice",
    "leaf": "leaves",
    "bus": "buses",
    "chassis": "chassis",
    "series": "series",
    "aircraft": "aircraft",
}


@functools.lru_cache(maxsize=1)
def _tables() -> dict:
    text = resources.files("remoteclip.data").joinpath("vocabulary.yaml").read_text()
    return yaml.safe_load(text)


def normalise(label: str) -> str:
    """Lower-case a raw label and fold `_`, `-` and space runs into single spaces."""
    return SEPARATORS.sub(" ", label.replace("\ufeff", "").strip().lower()).strip()


def canonical(label: str, dataset_aliases: dict[str, str] | None = None, family: str | None = None) -> str:
    """Map a raw dataset label to the canonical vocabulary.

    `dataset_aliases` (from the config) wins over the per-family table shipped with the
    package (`family`, e.g. "loveda"), which wins over the global alias table.
    """
    name = normalise(label)
    for table in (
        {normalise(k): v for k, v in (dataset_aliases or {}).items()},
        _tables()["datasets"].get(family or "", {}),
        _tables()["aliases"],
    ):
        if name in table:
            return normalise(table[name])
    return name


def plural(noun: str) -> str:
    """English plural of a (possibly multi-word) class name: the last word is inflected."""
    entry = _tables()["nouns"].get(noun)
    if entry:
        return entry["plural"]
    head, _, last = noun.rpartition(" ")
    if last in _IRREGULAR_PLURALS:
        word = _IRREGULAR_PLURALS[last]
    elif re.search(r"(s|x|z|ch|sh)$", last):
        word = last + "es"
    elif re.search(r"[^aeiou]y$", last):
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


def singular(noun: str) -> str:
    entry = _tables()["nouns"].get(noun)
    return entry["singular"] if entry else noun


def with_article(phrase: str) -> str:
    """'a ship', 'an airplane', 'an hour'; 'a unit' and 'a one-way road' keep 'a'."""
    lower = phrase.lower()
    if re.match(r"(uni|use|one|eu)", lower):
        return f"a {phrase}"
    if re.match(r"(hour|honest|heir)", lower) or lower[:1] in "aeiou":
        return f"an {phrase}"
    return f"a {phrase}"


def count_phrase(count: int, noun: str, number_words: Sequence[str] | None = None) -> str:
    """'a ship', '3 ships' (or 'three ships' when `number_words` is given)."""
    if count == 1:
        return with_article(singular(noun))
    number = number_words[count] if number_words else str(count)
    return f"{number} {plural(noun)}"
