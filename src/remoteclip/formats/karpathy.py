"""Karpathy-style caption JSON (RSICD `dataset_rsicd.json`, RSITMD `dataset_RSITMD.json`,
UCM-Captions `dataset.json`): `images[]` with `filename`, `split` and `sentences[].raw`.

For pretraining only the configured splits are used (default: train). The evaluation
stage reads the test split through the same function. A sentence without text (`raw` blank
and no tokens) is a counted caption skip; an image left without captions is an image skip.

Rule `ret_captions` (RET): one `{"image", "captions", "split"}` per image of the configured
splits, written to results/captions/{dataset}.jsonl.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import FormatError, SkipLog
from .common import image_index

DEFAULTS = {"splits": ["train"], "annotations": "dataset_rsicd.json", "images": "RSICD_images"}


def load(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        raise FormatError(path, "caption file missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise FormatError(path, "expected an object with an 'images' list (Karpathy format)")
    return data["images"]


def sentence_text(sentence: Any) -> str | None:
    """The sentence's `raw` text, else its tokens joined; None when neither has any text."""
    if isinstance(sentence, dict):
        if isinstance(sentence.get("raw"), str) and sentence["raw"].strip():
            return sentence["raw"].strip()
        if isinstance(sentence.get("tokens"), list):
            return " ".join(map(str, sentence["tokens"])).strip() or None
    return None


def entry_captions(entry: dict, number: int, path: Path, skips: SkipLog) -> list[str]:
    """The caption texts of one `images[]` entry; each sentence without text is a skip."""
    captions = []
    for index, sentence in enumerate(entry.get("sentences") or []):
        text = sentence_text(sentence)
        if text is None:
            problem = "blank caption" if isinstance(sentence, dict) else "not a sentence object"
            skips.skip(
                FormatError(path, f"images[{number}] ({entry['filename']}) sentences[{index}]: {problem}"), "caption"
            )
            continue
        captions.append(text)
    return captions


def parse(root: Path, options: dict[str, Any], skips: SkipLog) -> Iterator[dict]:
    """Yield {"image", "captions", "split"} for each image of the selected splits."""
    opts = {**DEFAULTS, **options}
    path = root / opts["annotations"]
    entries = load(path)
    images = image_index(root, opts["images"])
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or "filename" not in entry:
            skips.skip(FormatError(path, f"images[{number}] has no 'filename'"), "image")
            continue
        if entry.get("split") not in opts["splits"]:
            continue
        if not entry.get("sentences"):
            skips.skip(FormatError(path, f"images[{number}] ({entry['filename']}) has no sentences"), "image")
            continue
        captions = entry_captions(entry, number, path, skips)
        if not captions:
            skips.skip(FormatError(path, f"images[{number}] ({entry['filename']}) has only blank captions"), "image")
            continue
        image = images.get(entry["filename"])
        if image is None:
            skips.skip(FormatError(path, f"image file {entry['filename']!r} not found"), "image")
            continue
        yield {"image": str(image.relative_to(root)), "captions": captions, "split": entry["split"]}
