"""Images of a URL list fetched by img2dataset into WebDataset tars (GAIA), on the machine that
runs Snakemake (the login node: compute jobs have no internet).

A catalogue entry with an `img2dataset:` block names which of its files are URL lists; each
is fetched, verified and installed like any file, then `fetch_url_list` turns it into a JSON
Lines url list and runs `img2dataset.download` on it, writing `<root>/<list stem>/NNNNN.tar`
(plus img2dataset's per-shard `NNNNN.parquet` status table and `NNNNN_stats.json`), and
returns a summary of what came and what failed, with counts per reason.

GAIA (Orion-AI-Lab/GAIA README @1d70005, annotation.ipynb @2bfb644):
- verified: the splits are JSON files "compatible with the img2dataset tool" fetched by the
  authors with `--input_format json --url_col image_src --caption_col image_alt
  --save_additional_columns "['id','captions']" --output_format webdataset --image_size 512
  --encode_format png --encode_quality 9 --resize_mode keep_ratio --number_sample_per_shard 512
  --processes_count 4 --thread_count 4 --retries=5 --disallowed_header_directives '[]'`; the
  fields are id, image_src, image_alt, captions, credits, location, lat, lon, tag, resolution,
  satellite, sensor, modalities; `captions` is a list of five strings (the notebook's
  `captions: List[str]`, "Five captions").
- not verified (the Hub files were not reachable here): the file names (the README writes
  `./{split}_data.json`) and whether a file is an array of records or pandas' column layout;
  both layouts are read (img2dataset itself reads the file with `pandas.read_json`).

So each sample of the tars is `<key>.<encode_format>` (png with GAIA's options) + `<key>.txt`
(the `caption_key` field) + `<key>.json` holding the `keep` fields: GAIA's five captions are the
json field `captions` (the webdataset format's `captions: ["json:captions"]`).

img2dataset (rom1504/img2dataset 1.47.0, main.py `download(...)`, read in the released wheel)
pins dependencies that conflict with the project's (pandas < 3, webdataset < 0.3, wandb,
albumentations), so it is installed apart, with `pip install --no-deps --target <folder> -r
envs/img2dataset.txt`, and run in a process of its own with that folder first on PYTHONPATH.
Its `incremental_mode="incremental"` skips every shard that has a `_stats.json`, so a rerun
fetches nothing new (and does not retry a shard's failed URLs: delete the shard's three
files to fetch it again). A shard that img2dataset gave up on has no stats file: the summary
names it and the fetch fails, so a rerun redoes it.

Rows of the list without a URL, or whose `keep` fields are missing, are counted skips before
the fetch (the record's own fault); a list that yields no image at all is an error naming the
list and the reasons.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DownloadError
from .specs import file_specs

log = logging.getLogger(__name__)

# what a fetch writes beside (not into) the tars' folder: the url list img2dataset reads, and
# the summary; img2dataset takes every `*.json` in its output folder for a shard's stats
URL_LIST_SUFFIX = ".urls.jsonl"
FAILED_SUFFIX = ".failed.jsonl"
SUMMARY_SUFFIX = ".fetch.json"
# arguments this module sets itself; the catalogue's `options` may not override them
OWN_ARGUMENTS = frozenset(
    {"url_list", "input_format", "url_col", "caption_col", "output_folder", "output_format"}
    | {"save_additional_columns", "incremental_mode"}
)
EXAMPLES_PER_REASON = 5  # failed URLs listed per reason in the summary


@dataclass(frozen=True)
class UrlListSpec:
    """A catalogue entry's `img2dataset:` block (workflow/schemas/datasets.schema.yaml); absent
    keys: no `.txt` member, no field kept, img2dataset's own defaults."""

    url_lists: tuple[str, ...]
    url_key: str
    caption_key: str | None
    keep: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_entry(cls, dataset: str, block: dict[str, Any]) -> UrlListSpec:
        options = dict(block.get("options") or {})
        clash = sorted(OWN_ARGUMENTS & set(options))
        if clash:
            raise ValueError(f"dataset {dataset!r}: img2dataset.options may not set {', '.join(clash)}")
        return cls(
            url_lists=tuple(block["url_lists"]),
            url_key=block["url_key"],
            caption_key=block.get("caption_key"),
            keep=tuple(block.get("keep") or ()),
            options=options,
        )


def url_lists_of(dataset: str, entry: dict[str, Any]) -> list[str]:
    """The names of the entry's files that are URL lists (none without `img2dataset:`);
    ValueError for a name that is not one of its files."""
    block = entry.get("img2dataset")
    if not block:
        return []
    names = {s.name for s in file_specs(dataset, entry)}
    unknown = [n for n in block["url_lists"] if n not in names]
    if unknown:
        raise ValueError(
            f"dataset {dataset!r}: img2dataset.url_lists {unknown} are not among its files {sorted(names)}"
        )
    return list(block["url_lists"])


def installed_url_list(dataset: str, entry: dict[str, Any], name: str, root: Path) -> Path:
    """Where install put the url list `name`: `<root>/<subdir>/<name>`."""
    spec = next(s for s in file_specs(dataset, entry) if s.name == name)
    return (root / spec.subdir if spec.subdir else root) / name


def output_folder(root: Path, url_list: str) -> Path:
    """Where a list's tars go: `<root>/<the list's name without its suffix>` (train_data.json ->
    train_data/)."""
    return root / Path(url_list).stem


def summary_path(root: Path, url_list: str) -> Path:
    """The fetch summary of a list: `<root>/<stem>.fetch.json`, beside its folder."""
    folder = output_folder(root, url_list)
    return folder.parent / (folder.name + SUMMARY_SUFFIX)


def read_records(path: Path) -> Iterator[Any]:
    """The records of a JSON url list: an array of objects, or pandas' column layout
    ({column: {row: value}}), the two layouts `pandas.read_json` gives img2dataset. The file
    is decoded whole, as img2dataset itself does (GAIA's largest list has under 41,030
    records); a list of millions would want a streaming decoder."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DownloadError(f"{path}: not a JSON url list ({exc})") from None
    if isinstance(data, list):
        yield from data
    elif isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        rows = list(next(iter(data.values())))
        for row in rows:
            yield {column: values.get(row) for column, values in data.items()}
    else:
        raise DownloadError(f"{path}: neither an array of records nor columns of rows")


def record_problem(record: Any, spec: UrlListSpec) -> str | None:
    """Why a record cannot be fetched, or None."""
    if not isinstance(record, dict):
        return "record is not an object"
    url = record.get(spec.url_key)
    if not isinstance(url, str) or not url.strip():
        return f"no URL in {spec.url_key!r}"
    missing = [k for k in spec.keep if record.get(k) in (None, "", [])]
    if missing:
        return f"no {', '.join(map(repr, missing))}"
    return None


def write_url_list(source: Path, target: Path, spec: UrlListSpec) -> tuple[int, Counter[str]]:
    """The records as JSON Lines with only the fields img2dataset needs; (rows written,
    skipped records per reason)."""
    written, skipped = 0, Counter[str]()
    columns = [spec.url_key, *([spec.caption_key] if spec.caption_key else []), *spec.keep]
    tmp = target.with_suffix(target.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for record in read_records(source):
            problem = record_problem(record, spec)
            if problem:
                skipped[problem] += 1
                continue
            row = {c: record.get(c) for c in columns}
            if spec.caption_key and not isinstance(row[spec.caption_key], str):
                row[spec.caption_key] = ""  # the `.txt` member is optional: no alt text, an empty one
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            written += 1
    os.replace(tmp, target)
    return written, skipped


def download_arguments(url_list: Path, folder: Path, spec: UrlListSpec) -> dict[str, Any]:
    """The keyword arguments of `img2dataset.download` (names checked in its main.py)."""
    return {
        **spec.options,
        "url_list": str(url_list),
        "input_format": "jsonl",
        "url_col": spec.url_key,
        "caption_col": spec.caption_key,
        "output_format": "webdataset",
        "output_folder": str(folder),
        "save_additional_columns": list(spec.keep) or None,
        "incremental_mode": "incremental",
    }


# run in the peer process, nothing of ours imported there: img2dataset's own entry point, then
# the failed rows of its per-shard status tables (`NNNNN.parquet`: url, status, error_message)
# as JSON Lines, read with the peer's pyarrow (the project's environments have none)
_RUNNER = """
import glob, json, os, sys
import img2dataset
import pyarrow.parquet as pq
arguments, failed = json.loads(sys.argv[1]), sys.argv[2]
img2dataset.download(**arguments)
with open(failed + ".tmp", "w", encoding="utf-8") as fh:
    for path in sorted(glob.glob(os.path.join(arguments["output_folder"], "*.parquet"))):
        for row in pq.read_table(path, columns=["url", "status", "error_message"]).to_pylist():
            if row["status"] != "success":
                fh.write(json.dumps({"url": row["url"], "reason": row["error_message"]}) + "\\n")
os.replace(failed + ".tmp", failed)
"""


def run_img2dataset(arguments: dict[str, Any], packages: Path, failed: Path) -> None:
    """`img2dataset.download(**arguments)` in a process of its own with `packages` (the
    folder img2dataset was installed into with --target) first on PYTHONPATH; the URLs that
    failed, with their reasons, go to `failed` (JSON Lines)."""
    if not (packages / "img2dataset").is_dir():
        raise DownloadError(
            f"img2dataset is not installed in {packages}: run envs/install-img2dataset.sh "
            "(or set download.img2dataset_packages to the folder it was installed into)"
        )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(packages), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "NO_ALBUMENTATIONS_UPDATE": "1",  # albumentations asks PyPI for updates at import
        "WANDB_MODE": "disabled",
    }
    proc = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(arguments), str(failed)], env=env, check=False)
    if proc.returncode != 0:
        raise DownloadError(f"img2dataset exited with status {proc.returncode} on {arguments['url_list']}")


def summarise(folder: Path, rows: int, per_shard: int, failed: Path) -> dict[str, Any]:
    """Counts of img2dataset's `NNNNN_stats.json` files, failures per reason, and a few failed
    URLs per reason."""
    totals: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    stats_files = sorted(folder.glob("*_stats.json"))
    for path in stats_files:
        stats = json.loads(path.read_text())
        for key in ("count", "successes", "failed_to_download", "failed_to_resize"):
            totals[key] += int(stats.get(key) or 0)
        reasons.update({k: int(v) for k, v in (stats.get("status_dict") or {}).items() if k != "success"})
    expected = math.ceil(rows / per_shard) if rows else 0
    done = {p.name.split("_")[0] for p in stats_files}
    width = len(stats_files[0].name.split("_")[0]) if stats_files else 5
    missing = [f"{i:0{width}d}" for i in range(expected) if f"{i:0{width}d}" not in done]
    return {
        "rows": rows,
        **{k: totals[k] for k in ("count", "successes", "failed_to_download", "failed_to_resize")},
        "failures_by_reason": dict(reasons.most_common()),
        "failed_examples": failed_examples(failed),
        "failed_list": str(failed),
        "shards": len(stats_files),
        "shards_missing": missing,
        "tars": sorted(p.name for p in folder.glob("*.tar")),
    }


def failed_examples(failed: Path) -> dict[str, list[str]]:
    """Up to EXAMPLES_PER_REASON failed URLs per reason, from the list the fetch wrote."""
    examples: dict[str, list[str]] = {}
    if not failed.is_file():
        return examples
    with open(failed, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            urls = examples.setdefault(str(row["reason"]), [])
            if len(urls) < EXAMPLES_PER_REASON:
                urls.append(row["url"])
    return examples


def fetch_url_list(source: Path, root: Path, spec: UrlListSpec, packages: Path) -> dict[str, Any]:
    """Fetch the images of one url list into `<root>/<stem>/` and write its summary beside it
    (`summary_path`); DownloadError when shards are missing or no image came."""
    folder = output_folder(root, source.name)
    folder.mkdir(parents=True, exist_ok=True)
    url_list = folder.parent / (folder.name + URL_LIST_SUFFIX)
    failed = folder.parent / (folder.name + FAILED_SUFFIX)
    rows, skipped = write_url_list(source, url_list, spec)
    if rows:
        run_img2dataset(download_arguments(url_list, folder, spec), packages, failed)
    summary = {
        "url_list": str(source),
        "output": str(folder),
        **summarise(folder, rows, int(spec.options.get("number_sample_per_shard", 10000)), failed),
        "skipped_records": dict(skipped.most_common()),
    }
    summary_path(root, source.name).write_text(json.dumps(summary, indent=2) + "\n")
    log.info(
        "%s: %d of %d images fetched; failures %s",
        source.name,
        summary["successes"],
        rows,
        summary["failures_by_reason"],
    )
    if summary["shards_missing"]:
        raise DownloadError(
            f"{source}: img2dataset wrote no stats for shard(s) {', '.join(summary['shards_missing'])} of {folder}"
            " (it gave up on them); rerun to fetch them"
        )
    if not summary["successes"]:
        raise DownloadError(
            f"{source}: no image fetched into {folder} from {rows} URL(s); failures by reason:"
            f" {summary['failures_by_reason'] or 'none'}; records skipped: {dict(skipped) or 'none'}"
        )
    return summary
