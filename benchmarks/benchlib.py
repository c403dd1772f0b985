"""What every benchmark shares: timing, peers installed on demand beside the venv, the row a
benchmark reports, and the machine it ran on.

A peer is the library a user would pick instead of our stage. Peers that are not in the
project's environment are installed with `pip install --no-deps --target .bench/<name>` (the
pinned packages named, never anything into the venv, never torch) on first use, so
`make bench` works on a fresh clone where the package index is reachable. The folder is
appended to sys.path, so the venv's own numpy, scipy and torch keep precedence.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEERS = REPO / ".bench"


class PeerUnavailable(RuntimeError):
    """The peer library could not be installed (no package index reachable, say)."""


@dataclass
class Row:
    """One line of benchmarks/results.md: our time against the peer's on the same input."""

    stage: str
    ours_s: float  # in `unit` (lower is better)
    peer_s: float | None
    peer: str  # library and version, or why there is none
    equal: str  # what was asserted equal
    note: str = ""
    extra: dict = field(default_factory=dict)
    unit: str = "s"
    peer_extrapolated: bool = False  # the peer's time is extrapolated from a sample, not measured whole

    @property
    def ratio(self) -> float | None:
        """How many times faster ours is (peer time / our time); None without a peer, or when
        ours measured zero (a peak RSS that did not rise above the imports' is no ratio)."""
        return None if self.peer_s is None or self.ours_s <= 0 else self.peer_s / self.ours_s


def timed(fn, *args, **kwargs):
    """(wall seconds, result) of one call."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def install_peer(name: str, requirements: tuple[str, ...]) -> Path:
    """Install the pinned packages into .bench/<name> once; returns the folder."""
    folder = PEERS / name
    done = folder / ".installed"
    if done.is_file() and done.read_text() == "\n".join(requirements):
        return folder
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade", "--target", str(folder)]
    proc = subprocess.run([*cmd, *requirements], capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
        raise PeerUnavailable(
            f"pip could not install {' '.join(requirements)}: {lines[-1] if lines else proc.returncode}"
        )
    done.write_text("\n".join(requirements))
    return folder


def use_peer(name: str, requirements: tuple[str, ...]) -> Path:
    """Install (once) and put the peer's folder at the end of sys.path."""
    folder = install_peer(name, requirements)
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    return folder


def machine() -> dict:
    """CPU model, cores, load, Python and torch versions, date: the row set's context."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_1min": round(load, 2),
        "python": platform.python_version(),
        "torch": torch_version,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def report(rows: list[Row], json_path: str | None) -> None:
    """Print the rows; with --json, also write them for run_all.py."""
    for row in rows:
        ratio = "" if row.ratio is None else f"  x{row.ratio:.2f}"
        peer = "" if row.peer_s is None else f"  peer {row.peer_s:.3f} {row.unit}"
        print(f"{row.stage}: ours {row.ours_s:.3f} {row.unit}{peer}{ratio}  [{row.peer}; {row.equal}] {row.note}")
    if json_path:
        Path(json_path).write_text(json.dumps([{**asdict(r), "ratio": r.ratio} for r in rows], indent=1))


def add_json_flag(parser) -> None:
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file (run_all.py)")
