"""`snakemake --lint` is clean on the demo, the paper and the ablations configuration (CI runs it through here)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("config", ["config/config.yaml", "config/paper.yaml", "config/ablations.yaml"])
def test_snakemake_lint_is_clean(config):
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--configfile", config],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Congratulations, your workflow is in a good condition!" in out, out[-3000:]
