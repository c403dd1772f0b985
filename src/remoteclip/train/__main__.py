"""python -m remoteclip.train --shards DIR --out-dir DIR --export FILE --settings JSON [--threads N]

Launch with torchrun (several GPUs) or srun (SLURM tasks); see remoteclip.train.distributed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .loop import train
from .settings import from_config


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m remoteclip.train", description=__doc__.splitlines()[0])
    ap.add_argument("--shards", required=True, help="folder with shard-*.tar (and manifest.json)")
    ap.add_argument("--out-dir", required=True, help="checkpoints, log.csv, settings.json")
    ap.add_argument("--export", default=None, help="final state dict (results/models/<run>.pt)")
    ap.add_argument(
        "--settings",
        required=True,
        help='JSON: {"model": {...}, "train": {...}[, "weights": {source: weight}]} or @file.json',
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPUs shared by the ranks started together on this node (a torchrun's processes, "
        "LOCAL_WORLD_SIZE; or SLURM's tasks on the node): each sets torch threads to its share, "
        "at least 1",
    )
    ap.add_argument(
        "--weights-cache",
        default=None,
        help="read pretrained weights only from this cache (fetched by the fetch_weights rule), offline",
    )
    ap.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.weights_cache:
        from ..weights.cache import go_offline

        go_offline()  # a compute node may have no internet: fail on a missing file, never download
    text = open(args.settings[1:]).read() if args.settings.startswith("@") else args.settings
    settings = json.loads(text)
    model_s, train_s = from_config(settings.get("model", {}), settings.get("train", {}))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    summary = train(
        model_s,
        train_s,
        args.shards,
        args.out_dir,
        args.export,
        args.threads,
        args.stop_after,
        weights_cache=args.weights_cache,
        weights=settings.get("weights") or {},
    )
    logging.getLogger("remoteclip.train").info("done: %s", json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
