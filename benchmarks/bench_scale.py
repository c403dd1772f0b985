"""The data stages at growing sizes: wall time and peak memory per stage on synthetic inputs,
with time per item and memory growth, so that a stage whose memory or time per item grows with
its input shows it at 50 k rows already, not at 10 M on a cluster.

Each stage is one function in `STAGES` (register a new one with `@stage`): given a folder and a
size it writes its synthetic input there once (kept for later runs) and returns the call that
runs the stage (its imports done before, so they do not count). The input is written in one process and the stage runs in another, which
reports its wall time and how far its peak resident memory (`ru_maxrss`) rose above what it
held after its imports: the stage's own memory.

Peer: no library does these stages, so each is measured against the code it replaces:
`--against SRC` runs the same functions from another checkout's `src/` (main before this
change) on the same inputs, as the row's peer. Stages:

- `captions_hf_tsv`: the RET caption stage (`convert.ret_dataset`) on one caption table of the
  Hugging Face release's shape (`rows` rows, 5 per image, images found by name);
- `captions_caption_table`: the `caption_table` format (SkyScript's shape: a comma-separated
  table `filepath,title,title_multi_objects`, one row per image, both caption columns read)
  iterated to the end, on `rows` rows and images (hard links to one small PNG); the format is
  new, so no `--against` run;
- `parse_dota`: the parse stage (`convert.parse_dataset`) on `rows` DOTA label files and images
  (hard links to one small PNG and three label files);
- `b2c`: Box-to-Caption (`convert.b2c_dataset`) on a COCO file of `rows` images, 4 boxes each;
- `archive_check`: the archive member check (`extract.safety.Checker`) on `rows` member names
  (nothing extracted; quadratic before: the against-run stops at `--against-max-check`).
- `hash_images`: the pHash stage (`dedup.hash_source`, one process, fresh cache) on `rows`
  images (hard links to one small PNG); run up to 500,000 here, larger sizes projected;
- `dedup_run`: the per-run `dedup` rule (hash files read, duplicates at threshold 2, leaks
  against 60,000 test hashes at threshold 10) on `rows` training hashes;
- `plan_shards`: the `plan_shards` checkpoint on a caption file of `rows` rows (chunks of 1,000);
- `shard_manifest`: the `shard_manifest` rule over the `rows / 1,000` chunks of one source, one
  sample in a hundred removed by de-duplication.
- `captions_webdataset`: the caption stage (`convert.ret_dataset`) of a web corpus in WebDataset
  tars (`formats.webdataset`), `rows` samples of `.jpg` (one small PNG's bytes) + `.txt`
  (two caption lines) in tars of 10,000, read in place;
- `captions_parquet`: the same on Parquet (`formats.parquet`), `rows` rows of a Hugging Face
  `datasets` image struct + a caption, row groups of 1,000 (`datasets` writes image tables in
  groups of 100), files of 100,000 rows;
- `read_stored`: reading the images of those tar rows back through `imageio.load_sample_rgb`
  (`pread` at the stored offset, decode), what the hash and shard stages do per image.

The seven stages above and `captions_caption_table` have no `--against` run (their code is new). Encoding a chunk
(`build_shards`) is one job per 1,000 rows, so its memory does not grow with the source
(benchmarks/bench_shards.py times it against webdataset); training start-up over 50 k to 5 M
samples is benchmarks/bench_reader.py's.

Registering a stage:

    @stage("my_stage")   # reported="time": its time is what matters; peer=False: no --against
                         # run; max_rows=N: not run above N rows on this machine
    def my_stage(folder: Path, rows: int) -> Callable[[], object]:
        if not prepared(folder):          # the input is written once per (stage, size) folder
            ...write `rows` items under folder...
            mark_prepared(folder)
        from remoteclip.convert import run_it    # the stage's code, imported here: not counted
        return lambda: run_it(folder / "raw", folder / "out")   # `out/` is removed after each run

The run's return value is compared with the `--against` run's (a dict: its counts `images`,
`captioned`, `captions`, `boxes`; anything else as is), so return counts that do not depend on
the implementation.

Output: one `benchlib.Row` per stage and size (`--json` writes them for run_all.py), its stage
"<name> <rows> rows: peak RSS" (in MB) or ": wall time" (in s); `extra` holds `name`, `rows`,
`seconds`, `cpu_seconds` (the stage process's user + system time: steadier than wall time on a
shared machine), `peak_mb` (above the imports), `base_mb` (the imports), `result` (the run's counts), the peer's `peer_seconds`
and `peer_peak_mb`, and on each stage's largest size its growth and projection from its two
largest sizes, linear: `seconds_per_million`, `mb_per_million`, `projected_rows`,
`projected_seconds`, `projected_peak_mb` (also in that row's note). `--plot` draws time and
memory against rows per stage, with the projection dashed; `--replot ROWS.json` draws it from
an earlier run's rows without running anything.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 50000 500000 | --quick] [--only b2c ...]
        [--against ../main/src] [--work DIR] [--plot scale.png] [--project 10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from benchlib import PEERS, REPO, Row, add_json_flag, report

HERE = Path(__file__).resolve().parent
WORK = PEERS / "scale"  # the synthetic inputs, kept between runs (--work to put them elsewhere)
QUICK_SIZES = [300, 1200]  # --quick: checks every stage runs and grows; the numbers mean little
PROJECTED_ROWS = 10_000_000
STAGES: dict[str, Callable[[Path, int], Callable[[], object]]] = {}
# what a stage's row reports as "ours" and "peer": its peak memory (the default) or its time
REPORTED: dict[str, str] = {}


# stages the `--against` checkout (main before issue 24) cannot run: their modules are new
NO_PEER: set[str] = set()
# the largest size a stage runs at on this 2-core machine (its larger sizes are projected)
MAX_ROWS: dict[str, int] = {}


def stage(name: str, reported: str = "memory", peer: bool = True, max_rows: int | None = None):
    def register(fn):
        STAGES[name] = fn
        REPORTED[name] = reported
        if not peer:
            NO_PEER.add(name)
        if max_rows is not None:
            MAX_ROWS[name] = max_rows
        return fn

    return register


def prepared(folder: Path) -> bool:
    return (folder / ".prepared").is_file()


def mark_prepared(folder: Path) -> None:
    (folder / ".prepared").write_text("")


def png_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 120, 60)).save(buf, format="PNG")
    return buf.getvalue()


def hard_links(source: Path, names: list[Path], per_copy: int = 60_000) -> None:
    """Hard links to `source`, a fresh copy of it every `per_copy` (file systems cap the links
    of one file: 65,000 on ext4)."""
    for i, name in enumerate(names):
        if i % per_copy == 0:
            copy = source.with_name(f"{source.stem}.{i // per_copy}{source.suffix}")
            if not copy.exists():
                shutil.copyfile(source, copy)
        os.link(copy, name)


# ---- the stages ------------------------------------------------------------------------------


def web_tars(root: Path, rows: int, per_tar: int = 10_000) -> None:
    """`rows` WebDataset samples (`.jpg` with one small PNG's bytes, `.txt` of two lines)."""
    import io
    import tarfile

    image = png_bytes()
    root.mkdir(parents=True, exist_ok=True)
    for first in range(0, rows, per_tar):
        with tarfile.open(root / f"part-{first // per_tar:05d}.tar", "w", format=tarfile.GNU_FORMAT) as tar:
            for i in range(first, min(rows, first + per_tar)):
                caption = f"scene {i} seen from above .\nmany roofs in scene {i} .".encode()
                for name, data in ((f"{i:09d}.jpg", image), (f"{i:09d}.txt", caption)):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))


@stage("captions_hf_tsv")
def captions_hf_tsv(folder: Path, rows: int) -> Callable[[], object]:
    root = folder / "raw"
    if not prepared(folder):
        images = root / "data" / "imgs"
        images.mkdir(parents=True)
        (folder / "one.png").write_bytes(png_bytes())
        count = max(1, rows // 5)
        hard_links(folder / "one.png", [images / f"rsicd_{k:08d}.png" for k in range(count)])
        table = root / "csv_file" / "train" / "Ret-3_train.csv"
        table.parent.mkdir(parents=True)
        with open(table, "w", encoding="utf-8") as fh:
            fh.write("\ufefftitle\tfilename\n")
            for i in range(rows):
                fh.write(
                    f"caption {i % 5} of scene {i // 5}: many planes near a long terminal .\trsicd_{i // 5 % count:08d}.png\n"
                )
        mark_prepared(folder)

    from remoteclip.config import dataset_spec
    from remoteclip.convert import ret_dataset

    def run():
        options = {"images": ["data"], "splits": ["train"]}
        spec = dataset_spec("scale", {"group": "RET", "format": "hf_tsv", "root": str(root), "options": options})
        return ret_dataset(spec, folder / "out" / "scale.jsonl", folder / "out" / "scale.report.json")

    return run


@stage("captions_caption_table", peer=False)
def captions_caption_table(folder: Path, rows: int) -> Callable[[], object]:
    root = folder / "raw"
    if not prepared(folder):
        images = root / "images2"
        images.mkdir(parents=True)
        (folder / "one.png").write_bytes(png_bytes())
        hard_links(folder / "one.png", [images / f"a{k:09d}_CH_19.png" for k in range(rows)])
        with open(root / "SkyScript_train_unfiltered_5M.csv", "w", encoding="utf-8") as fh:
            fh.write("filepath,title,title_multi_objects\n")
            for k in range(rows):
                fh.write(f'images2/a{k:09d}_CH_19.png,a roundabout {k},"a roundabout, a parking lot and trees"\n')
        mark_prepared(folder)

    from remoteclip.formats import SkipLog, caption_table

    def run():
        options = {"tables": ["*.csv"], "captions": ["title", "title_multi_objects"]}
        images = captions = 0
        for item in caption_table.parse(root, options, SkipLog()):
            images += 1
            captions += len(item["captions"])
        return {"images": images, "captions": captions}

    return run


@stage("parse_dota")
def parse_dota(folder: Path, rows: int) -> Callable[[], object]:
    root = folder / "raw"
    if not prepared(folder):
        (root / "train" / "images").mkdir(parents=True)
        (root / "train" / "labelTxt").mkdir(parents=True)
        (folder / "one.png").write_bytes(png_bytes())
        labels = []
        for variant in range(3):
            lines = [
                f"{j} {j} {j + 4} {j} {j + 4} {j + 3} {j} {j + 3} {('plane', 'ship', 'harbor')[j % 3]} 0"
                for j in range(variant + 2)
            ]
            labels.append(folder / f"label{variant}.txt")
            labels[-1].write_text("\n".join(lines) + "\n")
        hard_links(folder / "one.png", [root / "train" / "images" / f"P{i:08d}.png" for i in range(rows)])
        for variant, label in enumerate(labels):
            hard_links(label, [root / "train" / "labelTxt" / f"P{i:08d}.txt" for i in range(variant, rows, 3)])
        mark_prepared(folder)

    from remoteclip.config import dataset_spec
    from remoteclip.convert import parse_dataset

    def run():
        spec = dataset_spec(
            "scale", {"group": "DET", "format": "dota", "root": str(root), "options": {"splits": ["train"]}}
        )
        return parse_dataset(spec, folder / "out" / "scale.json", folder / "out" / "scale.report.json")

    return run


@stage("b2c")
def b2c(folder: Path, rows: int) -> Callable[[], object]:
    annotations, parse_report = folder / "scale.json", folder / "scale.report.json"
    if not prepared(folder):
        from remoteclip.annotations import RecordSpool
        from remoteclip.formats.base import Box, ImageRecord

        names = ["plane", "ship", "storage tank", "harbor", "bridge", "vehicle", "pool", "roundabout", "court", "field"]
        spool = RecordSpool(folder / ".records")
        for i in range(rows):
            boxes = [Box((7 * i + 13 * j) % 100, (5 * i + 31 * j) % 100, 12, 9, names[(i + j) % 10]) for j in range(4)]
            spool.add(ImageRecord(f"train/images/P{i:08d}.png", 128, 128, boxes))
        spool.write_coco(annotations, "scale")
        spool.remove()
        parse_report.write_text(json.dumps({"boxes": spool.boxes, "skipped": {"total": 0, "by_reason": {}}}))
        mark_prepared(folder)

    from remoteclip.b2c import B2CSettings, load_templates
    from remoteclip.config import dataset_spec
    from remoteclip.convert import b2c_dataset

    def run():
        spec = dataset_spec("scale", {"group": "DET", "format": "dota", "root": str(folder / "raw")})
        settings = B2CSettings(templates=load_templates(REPO / "config" / "b2c_templates.yaml"))
        out = folder / "out"
        return b2c_dataset(spec, annotations, parse_report, settings, out / "scale.jsonl", out / "scale.report.json")

    return run


@stage("archive_check", reported="time")
def archive_check(folder: Path, rows: int) -> Callable[[], object]:
    from remoteclip.extract.safety import Checker, Member

    def run():
        checker = Checker(folder / "synthetic.tar")
        for i in range(rows):
            checker.check(Member(f"images/part{i % 7}/P{i:08d}.png"))
        return len(checker.names)

    return run


@stage("hash_images", peer=False, max_rows=500_000)
def hash_images(folder: Path, rows: int) -> Callable[[], object]:
    """The pHash stage (`dedup.hash_source`, one process) on a caption file of `rows` images."""
    captions = folder / "captions.jsonl"
    if not prepared(folder):
        images = folder / "images"
        images.mkdir()
        (folder / "one.png").write_bytes(png_bytes())
        names = [images / f"P{i:08d}.png" for i in range(rows)]
        hard_links(folder / "one.png", names)
        with open(captions, "w") as fh:
            for name in names:
                fh.write(json.dumps({"image": str(name), "captions": ["a scene ."], "source": "scale"}) + "\n")
        mark_prepared(folder)

    from remoteclip.dedup import caption_items, hash_source

    def run():
        out = folder / "out"
        counts = hash_source(caption_items(captions), out / "scale.train.tsv", out / "cache.tsv", workers=1)
        return {"images": counts["rows"]}

    return run


@stage("dedup_run", peer=False)
def dedup_run(folder: Path, rows: int) -> Callable[[], object]:
    """The per-run `dedup` rule's work (scripts/dedup.py): read `rows` training hashes and 60,000
    test hashes (from 50,000 rows on) from hash files, remove duplicates (threshold 2) and test
    leaks (threshold 10). The hashes are bench_dedup.py's leak-search input (`leak_hashes`: leaks
    planted at distances 0..17, a cluster of equal video frames that are training duplicates)."""
    train, test = folder / "train.tsv", folder / "test.tsv"
    tests = 60_000 if rows >= 50_000 else rows // 10  # --quick sizes: a tenth
    if not prepared(folder):
        import numpy as np

        from bench_dedup import leak_hashes

        train_values, test_values = leak_hashes(rows, tests, np.random.default_rng(rows))
        for path, name, values in ((train, "scale:train/images/P", train_values), (test, "bench:test/T", test_values)):
            with open(path, "w") as fh:
                fh.write("key\tphash\n")
                fh.writelines(f"{name}{i:08d}.png\t{v:016x}\n" for i, v in enumerate(values.tolist()))
        mark_prepared(folder)

    from remoteclip.dedup import deduplicate_sets, read_hashes, write_removed

    def run():
        keys, values, _ = read_hashes(train)
        test_keys, test_values, _ = read_hashes(test)
        removed, summary = deduplicate_sets(
            (keys, values), {"bench": (test_keys, test_values)}, 2, ["scale"], leak_threshold=10, workers=2
        )
        write_removed(folder / "out" / "removed.tsv", removed)
        return {"images": summary["images"], "removed": summary["removed"]}

    return run


def web_spec(root: Path, fmt: str):
    from remoteclip.config import dataset_spec

    return dataset_spec("scale", {"group": "WEB", "format": fmt, "root": str(root), "images": None})


@stage("captions_webdataset", peer=False)
def captions_webdataset(folder: Path, rows: int) -> Callable[[], object]:
    """The caption stage on `rows` samples in WebDataset tars, read in place."""
    root = folder / "raw"
    if not prepared(folder):
        web_tars(root, rows)
        mark_prepared(folder)

    from remoteclip.convert import ret_dataset

    return lambda: ret_dataset(web_spec(root, "webdataset"), folder / "out" / "scale.jsonl", folder / "out" / "r.json")


@stage("captions_parquet", peer=False)
def captions_parquet(folder: Path, rows: int) -> Callable[[], object]:
    """The caption stage on `rows` Parquet rows with embedded images, a row group at a time."""
    root = folder / "raw"
    if not prepared(folder):
        import pyarrow as pa
        import pyarrow.parquet as pq

        root.mkdir(parents=True)
        image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        schema = pa.schema([("image", image_type), ("caption", pa.string())])
        for first in range(0, rows, 100_000):
            with pq.ParquetWriter(root / f"train-{first // 100_000:05d}.parquet", schema) as writer:
                for start in range(first, min(rows, first + 100_000), 1000):
                    ids = range(start, min(rows, first + 100_000, start + 1000))
                    images = pa.array([{"bytes": png_bytes(), "path": None}] * len(ids), image_type)
                    captions = pa.array([f"scene {i} seen from above ." for i in ids])
                    writer.write_table(pa.Table.from_arrays([images, captions], schema=schema), row_group_size=1000)
        mark_prepared(folder)

    import pyarrow.parquet  # noqa: F401  (imported before the run, as the stages' other imports)

    from remoteclip.convert import ret_dataset

    return lambda: ret_dataset(web_spec(root, "parquet"), folder / "out" / "scale.jsonl", folder / "out" / "r.json")


@stage("read_stored", peer=False, max_rows=500_000)
def read_stored(folder: Path, rows: int) -> Callable[[], object]:
    """Decode `rows` images stored in WebDataset tars through `imageio.load_sample_rgb`."""
    captions = folder / "captions.jsonl"
    if not prepared(folder):
        from remoteclip.formats import SkipLog, webdataset

        web_tars(folder / "raw", rows)
        with open(captions, "w") as fh:
            for row in webdataset.parse(folder / "raw", {}, SkipLog()):
                stored = {**row["stored"], "tar": str(folder / "raw" / row["stored"]["tar"])}
                fh.write(json.dumps({"image": row["image"], "stored": stored}) + "\n")
        mark_prepared(folder)

    from remoteclip.imageio import load_sample_rgb

    def run():
        decoded = 0
        with open(captions) as fh:
            for line in fh:
                row = json.loads(line)
                decoded += load_sample_rgb(row["image"], row["stored"]).size[0] > 0
        return {"images": decoded}

    return run


def caption_rows(path: Path, rows: int) -> None:
    with open(path, "w") as fh:
        for i in range(rows):
            row = {"image": f"raw/P{i:08d}.png", "captions": [f"scene {i} ."], "source": "scale"}
            fh.write(json.dumps(row) + "\n")


@stage("plan_shards", peer=False)
def plan_shards(folder: Path, rows: int) -> Callable[[], object]:
    """The `plan_shards` checkpoint (`shards.plan_source` + `write_plan`): a source of `rows`
    caption rows cut into chunks of 1,000."""
    captions = folder / "captions.jsonl"
    if not prepared(folder):
        caption_rows(captions, rows)
        mark_prepared(folder)

    from remoteclip.shards.plan import plan_source, write_plan
    from remoteclip.shards.settings import ShardSettings

    def run():
        plan = plan_source(captions, "scale", ShardSettings(samples_per_shard=1000))
        write_plan(plan, folder / "out")
        return {"images": plan["rows"], "chunks": len(plan["chunks"])}

    return run


@stage("shard_manifest", peer=False)
def shard_manifest(folder: Path, rows: int) -> Callable[[], object]:
    """The `shard_manifest` rule (`shards.manifest.write_run_manifest`): link a source's chunks
    of 1,000 samples into a run, leaving out one sample in a hundred (de-duplication removals);
    the chunks are their records with empty tars and indexes (nothing is read from those)."""
    chunks = folder / "chunks"
    if not prepared(folder):
        caption_rows(folder / "captions.jsonl", rows)
        from remoteclip.shards.encode import record_path, tar_path
        from remoteclip.shards.index import index_path
        from remoteclip.shards.plan import chunk_stem, plan_source, write_plan
        from remoteclip.shards.settings import ShardSettings, member_key

        plan = plan_source(folder / "captions.jsonl", "scale", ShardSettings(samples_per_shard=1000))
        write_plan(plan, chunks)
        for chunk in plan["chunks"]:
            stem = chunks / chunk_stem(chunk)
            first = chunk["first_row"]
            samples = [
                [member_key("scale", first + k), f"scale:raw/P{first + k:08d}.png"] for k in range(chunk["rows"])
            ]
            record = {"samples": samples, "skipped": {}, "bytes": 0, "sha256": "-"}
            record_path(stem).write_text(json.dumps(record))
            tar_path(stem).write_bytes(b"")
            index_path(tar_path(stem)).write_bytes(b"")
        (folder / "removed.txt").write_text("".join(f"scale:raw/P{i:08d}.png\n" for i in range(0, rows, 100)))
        mark_prepared(folder)

    from remoteclip.shards.manifest import write_run_manifest

    def run():
        removed = set((folder / "removed.txt").read_text().split())
        manifest = write_run_manifest("scale", [chunks / "plan.json"], removed, folder / "out", {})
        return {"images": sum(s["samples"] for s in manifest["shards"]), "removed": manifest["removed_by_dedup"]}

    return run


# ---- measuring -------------------------------------------------------------------------------


def child(name: str, folder: Path, rows: int) -> None:
    """In the measuring process: prepare nothing (the inputs exist), run the stage, report."""
    run = STAGES[name](folder, rows)
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    # CPU time as well as wall time: on a shared machine the wall time per item moves with the
    # load, the CPU time of a one-process stage much less
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    out = {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": (after.ru_maxrss - before.ru_maxrss) / 1024,
        "base_mb": before.ru_maxrss / 1024,
    }
    if isinstance(result, dict):
        out["result"] = {
            k: result[k] for k in ("images", "captioned", "captions", "boxes", "removed", "chunks") if k in result
        }
    else:
        out["result"] = result
    print("RESULT " + json.dumps(out))


def in_process(src: Path, *args: str) -> dict | None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(HERE)]), "TQDM_DISABLE": "1"}
    proc = subprocess.run([sys.executable, str(Path(__file__)), *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(lines[-1].removeprefix("RESULT ")) if lines else None


def measure(name: str, rows: int, src: Path, work: Path) -> dict:
    """Prepare the input (once, in a process of its own), then run the stage in a fresh one."""
    folder = work / name / str(rows)
    folder.mkdir(parents=True, exist_ok=True)
    if not prepared(folder):
        in_process(REPO / "src", "--prepare", name, str(folder), str(rows))
    shutil.rmtree(folder / "out", ignore_errors=True)
    result = in_process(src, "--child", name, str(folder), str(rows))
    assert result is not None
    shutil.rmtree(folder / "out", ignore_errors=True)
    return result


def projection(sizes: list[int], seconds: list[float], peak_mb: list[float], target: int) -> dict:
    """Linear growth from the two largest sizes, carried on to `target` rows."""
    (small, large), (s0, s1), (m0, m1) = sizes[-2:], seconds[-2:], peak_mb[-2:]
    per_s, per_mb = (s1 - s0) / (large - small), (m1 - m0) / (large - small)
    return {
        "seconds_per_million": per_s * 1e6,
        "mb_per_million": per_mb * 1e6,
        "projected_rows": target,
        "projected_seconds": s1 + per_s * (target - large),
        "projected_peak_mb": m1 + per_mb * (target - large),
    }


def rows_of(
    name: str, sizes: list[int], against: Path | None, against_max_check: int, work: Path, target: int
) -> list[Row]:
    out, ours_by_size = [], {}
    skipped = [n for n in sizes if n > MAX_ROWS.get(name, n)]
    if skipped:
        print(f"{name}: not run at {', '.join(f'{n:,}' for n in skipped)} rows (above its {MAX_ROWS[name]:,} here)")
    sizes = [n for n in sizes if n not in skipped]
    if against is not None and name in NO_PEER:
        print(f"{name}: no --against run (the stage is new in this checkout)")
    for rows in sizes:
        ours = measure(name, rows, REPO / "src", work)
        ours_by_size[rows] = ours
        peer = None
        peer_runs = name not in NO_PEER and not (name == "archive_check" and rows > against_max_check)
        if against is not None and peer_runs:
            peer = measure(name, rows, against, work)
            assert peer["result"] == ours["result"], f"{name} at {rows}: {peer['result']} != {ours['result']}"
        per_item = 1e6 * ours["seconds"] / rows
        note = (
            f"{rows:,} rows: {ours['seconds']:.1f} s ({per_item:.1f} us/row; CPU {ours['cpu_seconds']:.1f} s); "
            f"peak RSS +{ours['peak_mb']:.0f} MB over "
            f"{ours['base_mb']:.0f} MB after imports"
        )
        if peer is not None:
            note += f"; against: {peer['seconds']:.1f} s, peak RSS +{peer['peak_mb']:.0f} MB"
        elif against is not None and name in NO_PEER:
            note += "; against: none (a stage the earlier checkout lacks)"
        elif against is not None:
            note += f"; against: not run above {against_max_check:,} members (quadratic)"
        by_time = REPORTED[name] == "time"
        key, unit = ("seconds", "s") if by_time else ("peak_mb", "MB")
        out.append(
            Row(
                stage=f"{name} {rows:,} rows: {'wall time' if by_time else 'peak RSS'}",
                ours_s=max(ours[key], 0.1) if not by_time else ours[key],
                peer_s=None if peer is None else (peer[key] if by_time else max(peer[key], 0.1)),
                peer="main before issue 24 (--against)"
                if against is not None and name not in NO_PEER
                else "none (no library does this stage)",
                equal="stage result counts" if peer is not None else "-",
                note=note,
                unit=unit,
                extra={
                    "name": name,
                    "rows": rows,
                    "seconds": ours["seconds"],
                    "cpu_seconds": ours["cpu_seconds"],
                    "peak_mb": ours["peak_mb"],
                    "base_mb": ours["base_mb"],
                    "result": ours["result"],
                    "peer_seconds": None if peer is None else peer["seconds"],
                    "peer_peak_mb": None if peer is None else peer["peak_mb"],
                },
            )
        )
    if len(sizes) > 1:
        seconds = [ours_by_size[n]["seconds"] for n in sizes]
        ahead = projection(sizes, seconds, [ours_by_size[n]["peak_mb"] for n in sizes], target)
        out[-1].extra.update(ahead)
        out[-1].note += (
            f"; growth {ahead['seconds_per_million']:.0f} s and {ahead['mb_per_million']:+.0f} MB per million rows, "
            f"projected to {target:,}: {ahead['projected_seconds']:,.0f} s, +{ahead['projected_peak_mb']:,.0f} MB"
        )
        flat = (seconds[-1] / sizes[-1]) / (seconds[0] / sizes[0])
        cpu = [max(ours_by_size[n]["cpu_seconds"], 1e-3) for n in sizes]
        out[-1].extra["cpu_per_row_growth"] = cpu_flat = (cpu[-1] / sizes[-1]) / (cpu[0] / sizes[0])
        print(
            f"{name}: time per row x{flat:.2f} (CPU time per row x{cpu_flat:.2f}) from {sizes[0]:,} to "
            f"{sizes[-1]:,}; {out[-1].note.split('; growth ')[1]}"
        )
    return out


def points(rows: list[dict]) -> dict[str, list[dict]]:
    """Each stage's sizes in order as {rows, seconds, peak_mb}; from the row's `extra`, or for
    rows written before it carried them, from its stage text and value (peak_mb None when the
    row reported time)."""
    by_stage: dict[str, list[dict]] = {}
    for r in rows:
        name, size = r["stage"].split(" rows:")[0].rsplit(" ", 1)
        peak = r["extra"].get("peak_mb", r["ours_s"] if r.get("unit") == "MB" else None)
        by_stage.setdefault(name, []).append(
            {"rows": int(size.replace(",", "")), "seconds": r["extra"]["seconds"], "peak_mb": peak}
        )
    return {name: sorted(p, key=lambda e: e["rows"]) for name, p in by_stage.items()}


def plot(rows: list[dict], path: Path, target: int = PROJECTED_ROWS) -> None:
    """Time and peak memory against rows, one line per stage, its projection to `target` dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, mine in points(rows).items():
        sizes = [e["rows"] for e in mine]
        for ax, key in ((axes[0], "seconds"), (axes[1], "peak_mb")):
            values = [e[key] for e in mine]
            if None in values:
                continue
            (line,) = ax.plot(sizes, [max(v, 1e-3) for v in values], marker="o", label=name)
            if len(sizes) > 1:
                ahead = projection(sizes, values, values, target)["projected_seconds"]
                ax.plot([sizes[-1], target], [max(values[-1], 1e-3), max(ahead, 1e-3)], "--", color=line.get_color())
    for ax, label in zip(axes, ("wall time (s)", "peak RSS above imports (MB)"), strict=True):
        ax.set(xscale="log", yscale="log", xlabel="rows", ylabel=label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"bench_scale: data stages by input size (dashed: linear projection to {target:,} rows)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"plot: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[50_000, 500_000])
    ap.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} (a smoke run)")
    ap.add_argument("--work", type=Path, default=WORK, help="folder of the synthetic inputs (kept for later runs)")
    ap.add_argument("--plot", type=Path, default=WORK / "scale.png", help="the figure of time and memory by size")
    ap.add_argument("--replot", type=Path, default=None, help="draw --plot from an earlier run's --json rows only")
    ap.add_argument("--project", type=int, default=PROJECTED_ROWS, help="the size the growth is projected to")
    ap.add_argument("--only", nargs="+", choices=list(STAGES), default=list(STAGES))
    ap.add_argument("--against", type=Path, default=None, help="another checkout's src/ to run as the peer")
    ap.add_argument("--against-max-check", type=int, default=50_000, help="largest archive_check size for --against")
    ap.add_argument("--prepare", nargs=3, metavar=("STAGE", "FOLDER", "ROWS"), help=argparse.SUPPRESS)
    ap.add_argument("--child", nargs=3, metavar=("STAGE", "FOLDER", "ROWS"), help=argparse.SUPPRESS)
    add_json_flag(ap)
    args = ap.parse_args()
    if args.prepare:
        name, folder, rows = args.prepare
        STAGES[name](Path(folder), int(rows))
        return
    if args.child:
        name, folder, rows = args.child
        child(name, Path(folder), int(rows))
        return
    if args.replot:
        plot(json.loads(args.replot.read_text()), args.plot, args.project)
        return
    sizes = QUICK_SIZES if args.quick else sorted(args.sizes)
    rows = [
        row
        for name in args.only
        for row in rows_of(name, sizes, args.against, args.against_max_check, args.work, args.project)
    ]
    report(rows, args.json)
    plot([asdict(r) for r in rows], args.plot, args.project)


if __name__ == "__main__":
    main()
