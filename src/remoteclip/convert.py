"""Stages between raw data and captions: parse (+ Mask-to-Box) to the unified COCO file,
Box-to-Caption, RET captions, and the caption summary.

The parse and RET caption stages read from `found.data_root` (the root, or the same-named
folder inside it an archive unpacked into) and stop with `found`'s error when the patterns
match nothing, or when they find no image or far fewer than the catalogue states.

Every stage streams: memory does not grow with the number of images (the parse stage's
parsers still list a dataset's files: a few hundred bytes per image).

Rules and files (scripts/parse.py, b2c.py, ret_captions.py, captions_summary.py):
- `parse`: <data>/raw/{dataset}/ -> results/annotations/{dataset}.json (COCO, `annotations`) and
  {dataset}.report.json (images, boxes per category, skips); for a format that parses in units
  (formats.UNITS: Stanford Drone's videos) `list_units` writes results/annotations/{dataset}.units.json,
  `parse_unit` one unit's records to results/annotations/{dataset}.units/{unit}.json, and
  `parse` joins them;
- `b2c`: that file and the B2C templates -> results/captions/{dataset}.jsonl, one line per image
  with boxes, `{"image", "captions" (five), "source", "split", "width", "height", "objects"}`
  plus `crop` for a tile (`image` is the file under the dataset root), and {dataset}.report.json;
  written in chunks that a killed job's rerun reuses (chunks.ChunkedLines);
- `ret_captions`: a RET or WEB dataset -> the same jsonl (`image`, `captions`, `source`, `split`,
  and `stored` for an image inside a container file: a web corpus's tar or Parquet file) and report;
- `captions_summary`: every report -> results/captions/summary.json.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from . import annotations as ann_io
from . import found
from .b2c import B2CSettings, captions_for, image_rng
from .chunks import ChunkedLines, file_identity, fingerprint_of
from .config import DatasetSpec
from .formats import UNITS, ImageRecord, SkipLog, get_caption_parser, get_parser

log = logging.getLogger(__name__)

# images per B2C chunk: what a killed b2c job redoes at most (a few seconds of work); the
# captions do not depend on it
B2C_CHUNK_IMAGES = 10_000


def _require_marker(spec: DatasetSpec) -> None:
    if not spec.root.is_dir():
        raise FileNotFoundError(f"dataset {spec.name}: raw folder {spec.root} does not exist")


def parse_dataset(
    spec: DatasetSpec, out_json: str | Path, out_report: str | Path, units: list[str | Path] | None = None
) -> dict:
    """Run the dataset's parser (and M2B for masks) and write the unified COCO file, record by
    record through a spool beside it (annotations.RecordSpool): memory does not grow with the
    number of images. With `units` (the files `parse_unit` wrote for a format in `UNITS`, in
    the order `list_units` gave), their records and skips are joined instead of parsing again."""
    _require_marker(spec)
    root = found.data_root(spec)
    found.require_files(spec, root)
    skips = SkipLog(strict=spec.strict)
    out_json = Path(out_json)
    if units is None:
        records = get_parser(spec.format)(root, spec.options, skips)
    else:
        records = _unit_records(units, skips)
    spool = ann_io.RecordSpool(out_json.with_name(f".{out_json.name}.records"))
    try:
        for record in found.rebase_records(tqdm(records, desc=f"parse {spec.name}", unit="img"), root, spec):
            spool.add(record)
        found.require_images(spec, root, spool.distinct_files, skips)
        spool.write_coco(out_json, spec.name)
    finally:
        spool.remove()
    report = {
        "dataset": spec.name,
        "group": spec.group,
        "format": spec.format,
        "images": spool.images,
        "boxes": spool.boxes,
        "boxes_per_category": dict(sorted(spool.boxes_per_category.items())),
        "skipped": skips.summary(),
    }
    ann_io.write_json(out_report, report)
    log.info(
        "%s: %d images, %d boxes, %d skipped", spec.name, report["images"], report["boxes"], skips.summary()["total"]
    )
    return report


def list_units(spec: DatasetSpec, out: str | Path) -> list[str]:
    """The units of a dataset whose format splits into them (formats.UNITS), in parse order,
    written as a JSON list (`found.require_files` stops a dataset with none first)."""
    _require_marker(spec)
    root = found.data_root(spec)
    found.require_files(spec, root)
    units = UNITS[spec.format][0](root, spec.options)
    ann_io.write_json(out, units)
    log.info("%s: %d units (%s ...)", spec.name, len(units), ", ".join(units[:3]))
    return units


def parse_unit(spec: DatasetSpec, unit: str, out: str | Path) -> dict:
    """One unit's records (relative to the folder read, as the parser gives them) and skips,
    written as one JSON file: what `parse_dataset(units=...)` joins."""
    _require_marker(spec)
    root = found.data_root(spec)
    skips = SkipLog(strict=spec.strict)
    records = UNITS[spec.format][1](root, spec.options, unit, skips)
    rows = [ann_io.spool_row(r) for r in tqdm(records, desc=f"parse {spec.name} {unit}", unit="img")]
    part = {"unit": unit, "records": rows, "skips": skips.entries}
    ann_io.write_json(out, part)
    log.info("%s %s: %d images, %d skipped", spec.name, unit, len(rows), len(skips.entries))
    return part


def _unit_records(units: list[str | Path], skips: SkipLog) -> Iterator[ImageRecord]:
    for path in units:
        part = ann_io.read_json(path)
        skips.entries.extend(part["skips"])
        for row in part["records"]:
            yield ann_io.record_of_row(row)


def _line(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def _batches(items: Iterable[ImageRecord], size: int) -> Iterator[list[ImageRecord]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def b2c_row(spec: DatasetSpec, rec: ImageRecord, settings: B2CSettings) -> dict | None:
    """The caption line of one image, or None for an image without boxes."""
    captions = captions_for(rec.boxes, rec.width, rec.height, settings, image_rng(settings, spec.name, rec.key))
    if captions is None:
        return None
    row = {
        "image": str(spec.root / rec.file_name),
        "captions": captions,
        "source": spec.name,
        "split": rec.split,
        "width": rec.width,
        "height": rec.height,
        "objects": dict(sorted(Counter(b.category for b in rec.boxes).items())),
    }
    if rec.crop is not None:
        row["crop"] = list(rec.crop)
    return row


def b2c_chunk(spec: DatasetSpec, records: list[ImageRecord], settings: B2CSettings) -> tuple[list[str], dict]:
    """The lines and counts of one chunk of images."""
    rows = [row for row in (b2c_row(spec, rec, settings) for rec in records) if row is not None]
    counts = {
        "images": len(records),
        "captioned": len(rows),
        "captions": sum(len(r["captions"]) for r in rows),
    }
    return [_line(r) for r in rows], counts


def b2c_dataset(
    spec: DatasetSpec,
    annotations: str | Path,
    parse_report: str | Path,
    settings: B2CSettings,
    out_jsonl: str | Path,
    out_report: str | Path,
    *,
    chunk_images: int = B2C_CHUNK_IMAGES,
) -> dict:
    """Box-to-Caption over a unified annotation file; images without boxes are counted.

    Images are read one at a time (annotations.iter_records) and captioned in chunks of
    `chunk_images` that survive the process (chunks.ChunkedLines): a killed job's rerun redoes
    at most the chunk it was in, and writes the same bytes."""
    fingerprint = fingerprint_of(
        {
            "stage": "b2c",
            "annotations": file_identity(annotations),
            "dataset": spec.name,
            "root": str(spec.root),
            "settings": dataclasses.asdict(settings),
            "chunk_images": chunk_images,
        }
    )
    parts = ChunkedLines(out_jsonl, fingerprint)
    totals: Counter[str] = Counter()
    records = tqdm(ann_io.iter_records(annotations), desc=f"b2c {spec.name}", unit="img")
    chunks = 0
    for index, chunk in enumerate(_batches(records, chunk_images)):
        counts = parts.done(index)
        if counts is None:
            lines, counts = b2c_chunk(spec, chunk, settings)
            parts.write(index, lines, counts)
        totals.update(counts)
        chunks = index + 1
    parts.finish(chunks)
    images, captioned = totals["images"], totals["captioned"]
    no_boxes = images - captioned
    parsed = ann_io.read_json(parse_report)
    report = {
        "dataset": spec.name,
        "group": spec.group,
        "images": images,
        "captioned": captioned,
        "captions": totals["captions"],
        "boxes": parsed["boxes"],
        "skipped": {"no boxes (B2C needs at least one)": no_boxes, **parsed["skipped"]["by_reason"]},
        "skipped_total": no_boxes + parsed["skipped"]["total"],
    }
    ann_io.write_json(out_report, report)
    log.info("%s: %d of %d images captioned, %d without boxes", spec.name, captioned, images, no_boxes)
    return report


def ret_dataset(spec: DatasetSpec, out_jsonl: str | Path, out_report: str | Path) -> dict:
    """Captions as the source gives them to caption jsonl: a retrieval dataset's human captions
    (train split by default; Karpathy JSON, or the HF release's tables) or a web corpus's
    (WebDataset tars, Parquet), read by the dataset's caption format and written line by line
    through a temporary file. Paths (the image, the container file of a `stored` image) are
    written under the dataset root, as the other stages open them."""
    _require_marker(spec)
    root = found.data_root(spec)
    found.require_files(spec, root)
    skips = SkipLog(strict=spec.strict)
    parser = get_caption_parser(spec.format)
    out_jsonl = Path(out_jsonl)
    out_jsonl.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_jsonl.with_suffix(out_jsonl.suffix + ".tmp")
    captioned = captions = distinct = 0
    last = None
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for item in tqdm(parser(root, spec.options, skips), desc=f"captions {spec.name}", unit="img"):
                if len(item["captions"]) != 5 and spec.group == "RET":
                    log.warning("%s: %s has %d captions (5 expected)", spec.name, item["image"], len(item["captions"]))
                image = str(root / item["image"])
                row = {"image": image, "captions": item["captions"], "source": spec.name, "split": item["split"]}
                if item.get("stored"):
                    row["stored"] = _under_root(item["stored"], root)
                fh.write(_line(row))
                captioned += 1
                captions += len(item["captions"])
                distinct += image != last  # parsers yield one item per image
                last = image
        found.require_images(spec, root, distinct, skips)
        os.replace(tmp, out_jsonl)
    finally:
        tmp.unlink(missing_ok=True)
    summary = skips.summary()
    # skipped captions and table rows are not images: only skipped images add to the count
    skipped_images = sum(1 for e in skips.entries if e["what"] == "image")
    report = {
        "dataset": spec.name,
        "group": spec.group,
        "images": captioned + skipped_images,
        "captioned": captioned,
        "captions": captions,
        "boxes": None,
        "skipped": summary["by_reason"],
        "skipped_total": summary["total"],
    }
    ann_io.write_json(out_report, report)
    return report


def _under_root(stored: dict, root: Path) -> dict:
    """A parser's `stored` (container path relative to the root) with the root in front."""
    kind = "tar" if "tar" in stored else "parquet"
    return {**stored, kind: str(root / stored[kind])}


def summarize(reports: list[str | Path], out: str | Path) -> dict:
    """results/captions/summary.json: per dataset images, boxes, captions, skips with reasons."""
    per = {}
    for path in reports:
        r = ann_io.read_json(path)
        per[r["dataset"]] = {
            k: r[k] for k in ("group", "images", "captioned", "boxes", "captions", "skipped_total", "skipped")
        }
    total = {k: sum(v[k] or 0 for v in per.values()) for k in ("images", "captioned", "captions", "skipped_total")}
    summary = {"datasets": per, "total": total}
    ann_io.write_json(out, summary)
    return summary
