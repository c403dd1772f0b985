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
- `parse_dota`: the parse stage (`convert.parse_dataset`) on `rows` DOTA label files and images
  (hard links to one small PNG and three label files);
- `b2c`: Box-to-Caption (`convert.b2c_dataset`) on a COCO file of `rows` images, 4 boxes each;
- `archive_check`: the archive member check (`extract.safety.Checker`) on `rows` member names
  (nothing extracted; quadratic before: the against-run stops at `--against-max-check`).

    .venv/bin/python benchmarks/bench_scale.py [--sizes 50000 500000] [--only b2c ...] [--against ../main/src]
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
from pathlib import Path

from benchlib import PEERS, REPO, Row, add_json_flag, report

HERE = Path(__file__).resolve().parent
WORK = PEERS / "scale"
STAGES: dict[str, Callable[[Path, int], Callable[[], object]]] = {}
# what a stage's row reports as "ours" and "peer": its peak memory (the default) or its time
REPORTED: dict[str, str] = {}


def stage(name: str, reported: str = "memory"):
    def register(fn):
        STAGES[name] = fn
        REPORTED[name] = reported
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


# ---- measuring -------------------------------------------------------------------------------


def child(name: str, folder: Path, rows: int) -> None:
    """In the measuring process: prepare nothing (the inputs exist), run the stage, report."""
    run = STAGES[name](folder, rows)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"seconds": seconds, "peak_mb": (peak - base) / 1024, "base_mb": base / 1024}
    if isinstance(result, dict):
        out["result"] = {k: result[k] for k in ("images", "captioned", "captions", "boxes") if k in result}
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


def measure(name: str, rows: int, src: Path) -> dict:
    """Prepare the input (once, in a process of its own), then run the stage in a fresh one."""
    folder = WORK / name / str(rows)
    folder.mkdir(parents=True, exist_ok=True)
    if not prepared(folder):
        in_process(REPO / "src", "--prepare", name, str(folder), str(rows))
    shutil.rmtree(folder / "out", ignore_errors=True)
    result = in_process(src, "--child", name, str(folder), str(rows))
    assert result is not None
    shutil.rmtree(folder / "out", ignore_errors=True)
    return result


def rows_of(name: str, sizes: list[int], against: Path | None, against_max_check: int) -> list[Row]:
    out, ours_by_size = [], {}
    for rows in sizes:
        ours = measure(name, rows, REPO / "src")
        ours_by_size[rows] = ours
        peer = None
        if against is not None and not (name == "archive_check" and rows > against_max_check):
            peer = measure(name, rows, against)
            assert peer["result"] == ours["result"], f"{name} at {rows}: {peer['result']} != {ours['result']}"
        per_item = 1e6 * ours["seconds"] / rows
        note = (
            f"{rows:,} rows: {ours['seconds']:.1f} s ({per_item:.1f} us/row); peak RSS +{ours['peak_mb']:.0f} MB over "
            f"{ours['base_mb']:.0f} MB after imports"
        )
        if peer is not None:
            note += f"; against: {peer['seconds']:.1f} s, peak RSS +{peer['peak_mb']:.0f} MB"
        elif against is not None:
            note += f"; against: not run above {against_max_check:,} members (quadratic)"
        by_time = REPORTED[name] == "time"
        key, unit = ("seconds", "s") if by_time else ("peak_mb", "MB")
        out.append(
            Row(
                stage=f"{name} {rows:,} rows: {'wall time' if by_time else 'peak RSS'}",
                ours_s=max(ours[key], 0.1) if not by_time else ours[key],
                peer_s=None if peer is None else (peer[key] if by_time else max(peer[key], 0.1)),
                peer="main before issue 24 (--against)" if against is not None else "none (no library does this stage)",
                equal="stage result counts" if peer is not None else "-",
                note=note,
                unit=unit,
                extra={"seconds": ours["seconds"], "peer_seconds": None if peer is None else peer["seconds"]},
            )
        )
    if len(sizes) > 1:
        small, large = ours_by_size[sizes[0]], ours_by_size[sizes[-1]]
        flat = (large["seconds"] / sizes[-1]) / (small["seconds"] / sizes[0])
        growth = (large["peak_mb"] - small["peak_mb"]) / (sizes[-1] - sizes[0]) * 1e6
        print(
            f"{name}: time per row x{flat:.2f} from {sizes[0]:,} to {sizes[-1]:,}; memory {growth:+.0f} MB per million rows"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[50_000, 500_000])
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
    rows = [row for name in args.only for row in rows_of(name, args.sizes, args.against, args.against_max_check)]
    report(rows, args.json)


if __name__ == "__main__":
    main()
