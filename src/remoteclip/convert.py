"""Stages between raw data and captions: parse (+ Mask-to-Box) to the unified COCO file,
Box-to-Caption, RET captions, and the caption summary.

The parse and RET caption stages read from `found.data_root` (the root, or the same-named
folder inside it an archive unpacked into) and stop with `found`'s error when the patterns
match nothing, or when they find no image or far fewer than the catalogue states.

Rules and files (scripts/parse.py, b2c.py, ret_captions.py, captions_summary.py):
- `parse`: <data>/raw/{dataset}/ -> results/annotations/{dataset}.json (COCO, `annotations`) and
  {dataset}.report.json (images, boxes per category, skips);
- `b2c`: that file and the B2C templates -> results/captions/{dataset}.jsonl, one line per image
  with boxes, `{"image", "captions" (five), "source", "split", "width", "height", "objects"}`
  plus `crop` for a tile (`image` is the file under the dataset root), and {dataset}.report.json;
- `ret_captions`: a RET dataset -> the same jsonl (`image`, `captions`, `source`, `split`) and report;
- `captions_summary`: every report -> results/captions/summary.json.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from . import annotations as ann_io
from . import found
from .b2c import B2CSettings, captions_for, image_rng
from .config import DatasetSpec
from .formats import SkipLog, get_caption_parser, get_parser

log = logging.getLogger(__name__)


def _require_marker(spec: DatasetSpec) -> None:
    if not spec.root.is_dir():
        raise FileNotFoundError(f"dataset {spec.name}: raw folder {spec.root} does not exist")


def parse_dataset(spec: DatasetSpec, out_json: str | Path, out_report: str | Path) -> dict:
    """Run the dataset's parser (and M2B for masks) and write the unified COCO file."""
    _require_marker(spec)
    root = found.data_root(spec)
    found.require_files(spec, root)
    skips = SkipLog(strict=spec.strict)
    parser = get_parser(spec.format)
    records = list(tqdm(parser(root, spec.options, skips), desc=f"parse {spec.name}", unit="img"))
    found.require_images(spec, root, (r.file_name for r in records), skips)
    found.rebase_records(records, root, spec)
    coco = ann_io.to_coco(records, spec.name)
    ann_io.write_json(out_json, coco)
    report = {
        "dataset": spec.name,
        "group": spec.group,
        "format": spec.format,
        "images": len(coco["images"]),
        "boxes": len(coco["annotations"]),
        "boxes_per_category": dict(sorted(Counter(b.category for r in records for b in r.boxes).items())),
        "skipped": skips.summary(),
    }
    ann_io.write_json(out_report, report)
    log.info(
        "%s: %d images, %d boxes, %d skipped", spec.name, report["images"], report["boxes"], skips.summary()["total"]
    )
    return report


def _write_jsonl(path: str | Path, rows: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def b2c_dataset(
    spec: DatasetSpec,
    annotations: str | Path,
    parse_report: str | Path,
    settings: B2CSettings,
    out_jsonl: str | Path,
    out_report: str | Path,
) -> dict:
    """Box-to-Caption over a unified annotation file; images without boxes are counted."""
    records = ann_io.from_coco(ann_io.read_json(annotations))
    rows, no_boxes = [], 0
    for rec in tqdm(records, desc=f"b2c {spec.name}", unit="img"):
        captions = captions_for(rec.boxes, rec.width, rec.height, settings, image_rng(settings, spec.name, rec.key))
        if captions is None:
            no_boxes += 1
            continue
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
        rows.append(row)
    _write_jsonl(out_jsonl, rows)
    parsed = ann_io.read_json(parse_report)
    report = {
        "dataset": spec.name,
        "group": spec.group,
        "images": len(records),
        "captioned": len(rows),
        "captions": sum(len(r["captions"]) for r in rows),
        "boxes": parsed["boxes"],
        "skipped": {"no boxes (B2C needs at least one)": no_boxes, **parsed["skipped"]["by_reason"]},
        "skipped_total": no_boxes + parsed["skipped"]["total"],
    }
    ann_io.write_json(out_report, report)
    log.info("%s: %d of %d images captioned, %d without boxes", spec.name, len(rows), len(records), no_boxes)
    return report


def ret_dataset(spec: DatasetSpec, out_jsonl: str | Path, out_report: str | Path) -> dict:
    """Human captions of a retrieval dataset (train split by default) to caption jsonl, read
    by the dataset's caption format (Karpathy JSON, or the HF release's tables)."""
    _require_marker(spec)
    root = found.data_root(spec)
    found.require_files(spec, root)
    skips = SkipLog(strict=spec.strict)
    parser = get_caption_parser(spec.format)
    rows = []
    for item in tqdm(parser(root, spec.options, skips), desc=f"captions {spec.name}", unit="img"):
        if len(item["captions"]) != 5:
            log.warning("%s: %s has %d captions (5 expected)", spec.name, item["image"], len(item["captions"]))
        rows.append(
            {
                "image": str(root / item["image"]),
                "captions": item["captions"],
                "source": spec.name,
                "split": item["split"],
            }
        )
    found.require_images(spec, root, (r["image"] for r in rows), skips)
    _write_jsonl(out_jsonl, rows)
    summary = skips.summary()
    # skipped captions and table rows are not images: only skipped images add to the count
    skipped_images = sum(1 for e in skips.entries if e["what"] == "image")
    report = {
        "dataset": spec.name,
        "group": spec.group,
        "images": len(rows) + skipped_images,
        "captioned": len(rows),
        "captions": sum(len(r["captions"]) for r in rows),
        "boxes": None,
        "skipped": summary["by_reason"],
        "skipped_total": summary["total"],
    }
    ann_io.write_json(out_report, report)
    return report


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
