"""Class-name handling shared by the parsers: canonical names, aliases and ignores.

Every box parser maps its raw labels through a `Labeler`, so records carry the canonical names of
src/remoteclip/data/vocabulary.yaml.
"""

from __future__ import annotations

from typing import Any

from ..vocabulary import canonical, normalise


class Labeler:
    """Maps a raw label to its canonical name, or None when the dataset ignores it.

    Options: `aliases` {raw: canonical}, `ignore_classes` [raw or canonical names],
    `vocabulary` (the family of per-dataset aliases shipped with the package),
    `keep_classes` [canonical names] (everything else ignored).
    """

    def __init__(self, options: dict[str, Any]):
        self.aliases = options.get("aliases") or {}
        self.family = options.get("vocabulary")
        self.ignore = {normalise(n) for n in options.get("ignore_classes") or []}
        self.ignore |= {self._map(n) for n in options.get("ignore_classes") or []}
        keep = options.get("keep_classes")
        self.keep = {self._map(n) for n in keep} if keep else None

    def _map(self, raw: str) -> str:
        return canonical(raw, self.aliases, self.family)

    def __call__(self, raw: str) -> str | None:
        if normalise(raw) in self.ignore:
            return None
        name = self._map(raw)
        if name in self.ignore or (self.keep is not None and name not in self.keep):
            return None
        return name
