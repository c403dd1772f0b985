"""The training reader (remoteclip.train.reader) against webdataset's random-access reader, wids,
and its start-up at 50 k to 5 M samples.

1. Random reads. The same shards (`--shards` tars of `--per-shard` samples: a JPEG-sized member,
   a JSON and a caption each), read in the order a training epoch reads them (one seeded global
   permutation over all samples, as GlobalBatchSampler draws it), `--reads` samples, with the
   same number of open shards per reader (`--open`). Ours: the member index built beside each
   tar (as `build_shards` writes it), numpy arrays, a bounded cache of open files. wids
   0.1.11's ShardListDataset, what a WebDataset user picks for random access: it scans a tar's
   headers whenever it opens the shard (its LRUShards closes the least recently used). Timed:
   start-up plus the reads. Asserted equal: the image and JSON bytes of every sample read.
2. Start-up at `--sizes` samples (1,000 per shard): what a rank does before its first step
   (remoteclip.train.loop.training_shards: the manifest, a stat and the member index of every
   shard, the arrays), in a fresh process, with its peak RSS above the process's before. The
   shards are sparse files of the size their indexes describe (a start-up reads no member),
   so 5 M samples need no 300 GB. The peer is the tar-header scan that both main's reader (at
   every start-up) and wids (at every shard it opens) do, timed on the real tars of part 1 and
   extrapolated per sample (marked so).

    .venv/bin/python benchmarks/bench_reader.py [--shards 200] [--per-shard 200] [--reads 4000]
        [--sizes 50000 500000 5000000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from benchlib import REPO, Row, add_json_flag, report, use_peer

WIDS = ("wids==0.1.11",)
MEMBER = {"jpg": 20_000, "json": 400, "txt": 60}  # bytes per member of a 224-448 px sample
STARTUP = """
import json, os, resource, sys, time
from pathlib import Path
from remoteclip.train.loop import training_shards
after_imports = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
start = time.perf_counter()
index, digests = training_shards(Path(sys.argv[1]), skip_bad=False)
seconds = time.perf_counter() - start
arrays = sum(a.nbytes for a in (index.shard, index.keys, index.jpg, index.meta)) / 2**20
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "samples": len(index), "index_mb": arrays, "peak_mb": peak, "imports_mb": after_imports}))
"""


def write_tars(folder: Path, shards: int, per_shard: int) -> list[Path]:
    """Real tars (random bytes as members) with their member index, as build_shards writes them."""
    from remoteclip.shards.index import index_path, scan_tar, write_index

    rng = np.random.default_rng(0)
    paths = []
    for s in range(shards):
        path = folder / f"shard-{s:06d}.tar"
        with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
            for i in range(per_shard):
                for kind, size in MEMBER.items():
                    data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
                    info = tarfile.TarInfo(f"s-{s * per_shard + i:09d}.{kind}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        write_index(scan_tar(path), index_path(path))
        paths.append(path)
    return paths


def ours_reads(paths: list[Path], order: np.ndarray, open_files: int) -> tuple[float, list[bytes]]:
    from remoteclip.train.data import ShardDataset, ShardIndex

    start = time.perf_counter()
    data = ShardDataset(ShardIndex.build(paths), None, None, open_shards=open_files)
    got = [b"".join(data._members(int(i))) for i in order]  # the JSON and the image of each sample
    return time.perf_counter() - start, got


def wids_reads(paths: list[Path], per_shard: int, order: np.ndarray, open_files: int) -> tuple[float, list[bytes]]:
    use_peer("wids-0.1.11", WIDS)
    import wids

    shards = [{"url": str(p), "nsamples": per_shard} for p in paths]
    start = time.perf_counter()
    data = wids.ShardListDataset(shards, lru_size=open_files, transformations=[], localname=lambda url: url)
    got = []
    for i in order:
        sample = data[int(i)]
        got.append(_bytes(sample[".json"]) + _bytes(sample[".jpg"]))
    return time.perf_counter() - start, got


def _bytes(value) -> bytes:
    return value.getvalue() if hasattr(value, "getvalue") else bytes(value)


def scan_seconds_per_sample(paths: list[Path], per_shard: int) -> float:
    from remoteclip.shards.index import scan_tar

    start = time.perf_counter()
    for path in paths:
        scan_tar(path)
    return (time.perf_counter() - start) / (len(paths) * per_shard)


def sparse_run(folder: Path, samples: int, per_shard: int = 1000) -> Path:
    """A run folder of `samples` samples: sparse tars, their member indexes, a manifest."""
    from remoteclip.shards.index import index_array, index_path, write_index

    folder.mkdir(parents=True)
    shards = []
    stride = sum(512 + -(-size // 512) * 512 for size in MEMBER.values())
    for s in range(-(-samples // per_shard)):
        n = min(per_shard, samples - s * per_shard)
        members, offset = [], 0
        for i in range(n):
            for kind, size in MEMBER.items():
                members.append((f"s-{s * per_shard + i:09d}.{kind}", offset + 512, size))
                offset += 512 + -(-size // 512) * 512
        path = folder / f"shard-{s:06d}.tar"
        with open(path, "wb") as fh:
            fh.truncate(n * stride + 1024)
        write_index(index_array(members), index_path(path))
        shards.append(
            {"name": path.name, "samples": n, "excluded": [], "bytes": n * stride + 1024, "sha256": f"{s:064x}"}
        )
    (folder / "manifest.json").write_text(json.dumps({"run": "bench", "total": samples, "shards": shards}))
    return folder


def startup(folder: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", STARTUP, str(folder)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", type=int, default=100)
    ap.add_argument("--per-shard", type=int, default=200)
    ap.add_argument("--reads", type=int, default=4000)
    ap.add_argument("--open", type=int, default=64, help="open shards per reader (train.open_shards; wids lru_size)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[50_000, 500_000, 5_000_000])
    add_json_flag(ap)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_tars(Path(tmp), args.shards, args.per_shard)
        n = args.shards * args.per_shard
        order = np.random.default_rng([0, 0]).permutation(n)[: args.reads]  # an epoch's first draws
        t_ours, ours = ours_reads(paths, order, args.open)
        t_wids, theirs = wids_reads(paths, args.per_shard, order, args.open)
        assert ours == theirs, "the two readers returned different bytes"
        rows.append(
            Row(
                f"reader: {args.reads} random samples of {n} in {args.shards} tars, {args.open} open shards",
                t_ours,
                t_wids,
                "wids 0.1.11 ShardListDataset (LRUShards, mmap tar index on each open)",
                f"same JSON and image bytes for all {args.reads} samples",
                f"ours {t_ours / args.reads * 1e6:.0f} us/sample incl. start-up; wids opens (and scans) a shard "
                f"on almost every read once there are many more shards than open files",
            )
        )
        per_sample = scan_seconds_per_sample(paths, args.per_shard)
        for size in args.sizes:
            result = startup(sparse_run(Path(tmp) / f"run{size}", size))
            assert result["samples"] == size
            rows.append(
                Row(
                    f"training start-up, {size:,} samples in {-(-size // 1000):,} shards (one rank)",
                    result["seconds"],
                    per_sample * size,
                    "tar-header scan (main's reader at each start; wids at each shard it opens)",
                    f"{size:,} samples indexed",
                    f"index arrays {result['index_mb']:.0f} MB ({result['index_mb'] * 2**20 / size:.0f} B/sample), "
                    f"process peak RSS {result['peak_mb']:.0f} MB ({result['imports_mb']:.0f} MB after its imports); "
                    f"the scan measured at {per_sample * 1e6:.0f} us/sample on the {n:,} samples above",
                    {**result, "scan_us_per_sample": per_sample * 1e6},
                    peer_extrapolated=True,
                )
            )
    report(rows, args.json)


if __name__ == "__main__":
    main()
