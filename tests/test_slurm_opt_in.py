"""`make test` leaves the machine alone: the local SLURM cluster test (which installs Debian
packages and writes /etc/slurm/slurm.conf) runs only when asked to."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_cluster_test_is_skipped_unless_opted_in():
    env = {k: v for k, v in os.environ.items() if k != "REMOTECLIP_SLURM_TEST"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(REPO / "tests" / "test_slurm.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "set REMOTECLIP_SLURM_TEST=1 to run it" in proc.stdout
    assert " passed" not in proc.stdout and "skipped" in proc.stdout
