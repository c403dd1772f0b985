"""Caption statistics for the data plots (paper Figs. 4-5): per caption source, reads
results/captions/<source>.jsonl and counts caption lengths in words and word frequencies."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

STOPWORDS = frozenset(
    "a an the is are was were be been of in on at to and or with by for from as it its this that "
    "there these those some many several two three four five six seven eight nine ten one".split()
)

WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")


def caption_stats(paths: Iterable[str | Path], groups: dict[str, str]) -> dict[str, dict]:
    """Per source: its group, caption lengths in words and a word counter (stop words left out)."""
    stats: dict[str, dict] = {}
    for path in paths:
        with open(path) as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                source = row.get("source") or Path(path).stem
                entry = stats.setdefault(
                    source, {"group": groups.get(source, "?"), "lengths": Counter(), "words": Counter(), "images": 0}
                )
                entry["images"] += 1
                for caption in row.get("captions") or []:
                    words = WORD.findall(caption.lower())
                    entry["lengths"][len(words)] += 1
                    entry["words"].update(w for w in words if w not in STOPWORDS and not w.isdigit())
    return stats
