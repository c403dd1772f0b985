"""Run the real Snakefile on a config in a temporary working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def write_config(workdir: Path, config: dict) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(
    workdir: Path,
    config_path: Path,
    *args: str,
    check: bool = True,
    timeout: int = 900,
    env: dict[str, str | None] | None = None,
):
    """Run the workflow; `env` adds (or, with None, removes) environment variables, e.g.
    {"HF_HUB_OFFLINE": None, "HF_ENDPOINT": hub.base} to let the fetch rules reach a test hub."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(config_path),
        "--cores",
        "2",
        *args,
    ]
    env = {
        k: v
        for k, v in {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src"), **(env or {})}.items()
        if v is not None
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """{rule: jobs} from the job stats table Snakemake prints before it runs."""
    table = output.split("Job stats:", 1)[1].split("Select jobs", 1)[0]
    rows = (line.split() for line in table.splitlines())
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit() and row[0] != "total"}


def tiny_config(workdir: Path) -> dict:
    """A few images of each demo format; every rule of the caption stages runs."""
    return {
        "seed": 1,
        "datasets": {
            "t_dota": {"group": "DET", "format": "dota", "synthetic": {"writer": "dota", "images": 12}},
            "t_dior": {"group": "DET", "format": "voc", "synthetic": {"writer": "dior", "images": 10}},
            "t_isaid": {
                "group": "SEG",
                "format": "coco",
                "options": {"tile": 128},
                "synthetic": {"writer": "isaid", "images": 3, "size": 256},
            },
            "t_potsdam": {
                "group": "SEG",
                "format": "rgb_mask",
                "options": {"tile": 128},
                "synthetic": {"writer": "potsdam", "images": 2, "size": 256},
            },
            "t_loveda": {
                "group": "SEG",
                "format": "index_mask",
                "options": {"vocabulary": "loveda"},
                "synthetic": {"writer": "loveda", "images": 6, "nodata": 0.3},
            },
            "t_rsicd": {
                "group": "RET",
                "format": "karpathy",
                "synthetic": {"writer": "karpathy", "images": 20, "splits": {"train": 0.6, "val": 0.2, "test": 0.2}},
            },
        },
        "b2c": {"templates": str(REPO / "config" / "b2c_templates.yaml")},
    }
