"""Version the workflow's artifacts with DVC: `dvc add` the configured result folders
(captions, de-duplication lists, shards, models, evaluation results, report; never the
unpacked raw datasets) and `dvc push` them to a remote (default: a local folder).

Restoring elsewhere: `dvc pull`, then `snakemake --touch`. DVC checks files out with
arbitrary modification times, and Snakemake's default rerun triggers include mtime, so
the touch puts the times back in DAG order; intermediate files that were not restored
(raw data, features) are not needed while everything downstream of them is up to date.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def dvc(*args: str, cwd: str | Path = ".") -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def ensure_repo(cwd: str | Path = ".") -> None:
    if (Path(cwd) / ".dvc").is_dir():
        return
    in_git = subprocess.run(["git", "rev-parse", "--git-dir"], cwd=cwd, capture_output=True).returncode == 0
    dvc("init", *([] if in_git else ["--no-scm"]), cwd=cwd)


def track(
    artifacts: list[str], remote: str, remote_name: str = "store", push: bool = True, cwd: str | Path = "."
) -> dict:
    """dvc add the existing artifacts and push them; returns what was done."""
    ensure_repo(cwd)
    present = [a for a in artifacts if (Path(cwd) / a).exists()]
    missing = sorted(set(artifacts) - set(present))
    if missing:
        log.warning("not tracked (missing): %s", ", ".join(missing))
    if not present:
        raise FileNotFoundError("none of the configured DVC artifacts exists; run the workflow first")
    url = remote if "://" in remote else str((Path(cwd) / remote).resolve())
    dvc("remote", "add", "--default", "--force", remote_name, url, cwd=cwd)
    dvc("add", *present, cwd=cwd)
    if push:
        dvc("push", "--remote", remote_name, cwd=cwd)
    pointers = [f"{a}.dvc" for a in present]
    log.info("tracked %s; commit %s and .dvc/config", ", ".join(present), ", ".join(pointers))
    return {"tracked": present, "missing": missing, "pointers": pointers, "remote": url, "pushed": push}


def restore(remote_name: str | None = None, cwd: str | Path = ".") -> None:
    dvc("pull", *(["--remote", remote_name] if remote_name else []), cwd=cwd)
