"""Peer packages that cannot share the project's environment, installed on demand into a
git-ignored folder of the checkout (`pip install --no-deps --target`), never into the venv.

CLIP_benchmark pins dependencies that conflict with ours (numpy >= 2.4), so it and exactly the
packages its metric modules import are installed side by side with pinned versions; the tests
run it in a process of its own with that folder first on PYTHONPATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# REMOTECLIP_PEERS moves the folder (a checkout that must keep its tree small, a shared cache)
PEERS = Path(os.environ.get("REMOTECLIP_PEERS") or REPO / ".peers")

# numpy < 2.4: CLIP_benchmark's `accuracy` calls float() on a 1-element array, which numpy 2.4 refuses
CLIP_BENCHMARK = (
    "clip-benchmark==1.6.2",
    "scikit-learn==1.9.1",
    "joblib==1.6.0",
    "threadpoolctl==3.8.0",
    "narwhals==2.29.0",
    "cloudpickle==3.1.3",
    "numpy==2.3.5",
)

# img2dataset (GAIA's image fetch) and what it imports: the list users install, envs/img2dataset.txt
IMG2DATASET = tuple(
    line.strip()
    for line in (REPO / "envs" / "img2dataset.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)


def install(name: str, requirements: tuple[str, ...]) -> tuple[Path | None, str]:
    """(the folder holding the packages, "") or (None, why they could not be installed)."""
    folder = PEERS / name
    done = folder / ".installed"
    if done.is_file() and done.read_text() == "\n".join(requirements):
        return folder, ""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--upgrade",
            "--target",
            str(folder),
            *requirements,
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
        return None, f"pip could not install {' '.join(requirements)}: {lines[-1] if lines else proc.returncode}"
    done.write_text("\n".join(requirements))
    return folder, ""


def python_path(folder: Path) -> dict[str, str]:
    """The environment of a process that sees the peers folder before the venv."""
    import os

    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), *filter(None, [os.environ.get("PYTHONPATH")])])}
