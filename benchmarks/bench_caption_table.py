"""The `caption_table` format (SkyScript) against pandas, the library SkyScript's own loader
uses (`pd.read_csv(sep=...)` of the whole table, src/training/data.py's CsvDataset): the same
SkyScript-shaped table (`filepath,title,title_multi_objects`, one row per image, both caption
columns read) and images, the items consumed one at a time as the caption stage writes them,
each side run in a fresh process that reports its wall time, CPU time
and how far its peak resident memory rose above what it held after its imports.

pandas' side is what a user would write for the same items: read the table with the caption
columns as strings, drop empty captions, keep rows whose image file exists. It does not group
rows of one path (SkyScript's paths are unique on this input, so the items are equal; ours
groups them in a scratch SQLite database) nor check paths for `..`. The items of both sides are
asserted equal (their digest).

    .venv/bin/python benchmarks/bench_caption_table.py [--rows 500000] [--json rows.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import resource
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from queue import Empty

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchlib import Row, add_json_flag, report  # noqa: E402

CAPTIONS = ["title", "title_multi_objects"]


def ours(root: Path) -> Iterator[dict]:
    from remoteclip.formats import SkipLog, caption_table

    return caption_table.parse(root, {"tables": ["*.csv"], "captions": CAPTIONS}, SkipLog())


def with_pandas(root: Path) -> Iterator[dict]:
    import pandas as pd

    for table in sorted(root.glob("*.csv")):
        frame = pd.read_csv(table, sep=",", usecols=["filepath", *CAPTIONS], dtype=str, keep_default_na=False)
        for path, *texts in frame.itertuples(index=False):
            captions = [t.strip() for t in texts if t.strip()]
            if captions and os.path.isfile(root / path):
                yield {"image": path, "captions": captions, "split": "train"}


def digest(items: Iterable[dict]) -> tuple[int, str]:
    """(count, sha256) of the items, consumed one at a time: what a stage writing them out holds."""
    sha, count = hashlib.sha256(), 0
    for item in items:
        sha.update(json.dumps(item, sort_keys=True).encode() + b"\n")
        count += 1
    return count, sha.hexdigest()


def _measure(name: str, root: str, queue) -> None:
    if name == "ours":
        import remoteclip.formats  # noqa: F401  (imports are not the stage's)
    else:
        import pandas  # noqa: F401
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu = time.perf_counter(), time.process_time()
    count, sha = digest((ours if name == "ours" else with_pandas)(Path(root)))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"seconds": seconds, "cpu": cpu, "peak_mb": (peak - base) / 1024, "items": count, "digest": sha})


def measure(name: str, root: Path) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(name, str(root), queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=1)
            break
        except Empty:
            if not proc.is_alive():  # died before it reported: say so rather than wait forever
                raise RuntimeError(f"the {name} side exited with status {proc.exitcode}") from None
    proc.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--work", default=str(HERE.parent / ".bench" / "caption_table"))
    add_json_flag(ap)
    args = ap.parse_args()
    import bench_scale  # its stage writes the SkyScript-shaped input once per size

    folder = Path(args.work) / str(args.rows)
    folder.mkdir(parents=True, exist_ok=True)
    bench_scale.captions_caption_table(folder, args.rows)
    root = folder / "raw"
    a, b = measure("ours", root), measure("pandas", root)
    assert (a["items"], a["digest"]) == (b["items"], b["digest"]), (a, b)
    import pandas

    rows = []
    for unit, key in (("s", "seconds"), ("MB", "peak_mb")):
        rows.append(
            Row(
                stage=f"caption_table {args.rows:,} rows: {'wall time' if unit == 's' else 'peak RSS'}",
                ours_s=a[key],
                peer_s=b[key],
                peer=f"pandas {pandas.__version__} read_csv + itertuples",
                equal="same items (image, captions in column order), digest",
                note=f"CPU ours {a['cpu']:.1f} s, pandas {b['cpu']:.1f} s; {a['items']:,} images",
                unit=unit,
                extra={"ours": a, "pandas": b, "rows": args.rows},
            )
        )
    report(rows, args.json)


if __name__ == "__main__":
    main()
