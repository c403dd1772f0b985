"""Reading a web corpus's captions in place: our caption formats against the library a user would
read the release with, on the same synthetic release.

- WebDataset tars (RS5M, RSTeller): `formats.webdataset.parse` (member headers read, image data
  seeked over, caption members read) against the peer `webdataset.WebDataset(urls)` iterating the
  same tars (the library's own reader, which reads every member's bytes), taking each sample's
  `txt` lines. Equal: the (key, captions) of every sample, in order.
- Parquet with embedded images (Git-10M): `formats.parquet.parse` (a row group at a time, caption
  column only) against the peer `pyarrow.parquet.read_table(path, columns=[caption])` (the whole
  column at once). Equal: every row's caption, in order.

Input: `--samples` samples of `--image-kb` KB of random bytes each (RS5M's tars hold about
100 KB per image: ~500 GB for 5.07 M pairs) in tars of 1,000 samples, and the same as one
Parquet file in row groups of 1,000. Each side runs once, in this process, after one untimed
pass that brings the files into the page cache (so both read from memory, not the disk).

    .venv/bin/python benchmarks/bench_web.py [--samples 20000] [--image-kb 100] [--work DIR]
"""

from __future__ import annotations

import argparse
import io
import os
import tarfile
import tempfile
from pathlib import Path

from benchlib import Row, add_json_flag, report, timed


def write_release(root: Path, samples: int, image_kb: int) -> None:
    """Tars of 1,000 samples (`.jpg` random bytes, `.txt` two caption lines) and one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tars, parquet = root / "tars", root / "parquet"
    tars.mkdir(parents=True)
    parquet.mkdir()
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([("image", image_type), ("caption", pa.string())])
    with pq.ParquetWriter(parquet / "train-00000.parquet", schema) as writer:
        for first in range(0, samples, 1000):
            ids = range(first, min(samples, first + 1000))
            images = [os.urandom(image_kb * 1024) for _ in ids]
            captions = [f"scene {i} from above .\nmany roofs in scene {i} ." for i in ids]
            with tarfile.open(tars / f"part-{first // 1000:05d}.tar", "w", format=tarfile.GNU_FORMAT) as tar:
                for i, image, caption in zip(ids, images, captions):
                    for name, data in ((f"{i:09d}.jpg", image), (f"{i:09d}.txt", caption.encode())):
                        info = tarfile.TarInfo(name)
                        info.size = len(data)
                        tar.addfile(info, io.BytesIO(data))
            table = pa.Table.from_arrays(
                [pa.array([{"bytes": b, "path": None} for b in images], image_type), pa.array(captions)], schema=schema
            )
            writer.write_table(table, row_group_size=1000)


def ours_tars(root: Path) -> list[tuple[str, list[str]]]:
    from remoteclip.formats import SkipLog, webdataset

    rows = webdataset.parse(root / "tars", {}, SkipLog(strict=True))
    return [(r["image"].rsplit("/", 1)[1].split(".")[0], r["captions"]) for r in rows]


def peer_tars(root: Path) -> list[tuple[str, list[str]]]:
    import webdataset as wds

    urls = [str(p) for p in sorted((root / "tars").glob("*.tar"))]
    out = []
    for sample in wds.WebDataset(urls, shardshuffle=False):
        lines = sample["txt"].decode().splitlines()
        out.append((sample["__key__"], [line.strip() for line in lines if line.strip()]))
    return out


def ours_parquet(root: Path) -> list[str]:
    from remoteclip.formats import SkipLog, parquet

    return [r["captions"][0] for r in parquet.parse(root / "parquet", {}, SkipLog(strict=True))]


def peer_parquet(root: Path) -> list[str]:
    import pyarrow.parquet as pq

    table = pq.read_table(root / "parquet" / "train-00000.parquet", columns=["caption"])
    return [c.strip() for c in table.column("caption").to_pylist()]


def warm(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fh:
                while fh.read(1 << 24):
                    pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--image-kb", type=int, default=100)
    ap.add_argument(
        "--work", type=Path, default=None, help="where the synthetic release is written (default: a temporary folder)"
    )
    add_json_flag(ap)
    args = ap.parse_args()

    import pyarrow
    import pyarrow.parquet  # noqa: F401  (imports before the timed calls, both sides)
    import webdataset

    import remoteclip.formats  # noqa: F401

    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        root = Path(tmp)
        write_release(root, args.samples, args.image_kb)
        warm(root)
        size = f"{args.samples:,} samples of {args.image_kb} KB"
        t_ours, ours = timed(ours_tars, root)
        t_peer, peer = timed(peer_tars, root)
        assert ours == peer, "the two readers disagree on the tars' captions"
        rows = [
            Row(
                f"web captions, WebDataset tars: {size}",
                t_ours,
                t_peer,
                f"webdataset {webdataset.__version__} WebDataset(urls)",
                "every sample's key and captions, in order",
                note=f"{args.samples / t_ours:,.0f} samples/s ours, {args.samples / t_peer:,.0f} the peer's",
            )
        ]
        t_ours, ours_p = timed(ours_parquet, root)
        t_peer, peer_p = timed(peer_parquet, root)
        assert ours_p == peer_p, "the two readers disagree on the Parquet captions"
        rows.append(
            Row(
                f"web captions, Parquet: {size}",
                t_ours,
                t_peer,
                f"pyarrow {pyarrow.__version__} parquet.read_table(columns=[caption])",
                "every row's caption, in order",
                note=f"{args.samples / t_ours:,.0f} rows/s ours, {args.samples / t_peer:,.0f} the peer's (whole column in memory)",
            )
        )
    report(rows, args.json)


if __name__ == "__main__":
    main()
