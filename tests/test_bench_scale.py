"""benchmarks/bench_scale.py --quick: every registered data stage runs on its synthetic input
at two sizes in processes of its own, reports its time, memory and result counts per size and a
projection from its largest sizes, and draws the plot (inputs in a temporary folder). The
numbers themselves are not checked: timings belong to `make bench`, not to tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_scale  # noqa: E402  (benchmarks/ is not a package)

PNG = b"\x89PNG\r\n\x1a\n"
# the count each stage's result carries for `rows` input rows (captions: 5 per image)
COUNTED = {"captions_hf_tsv": "captions", "archive_check": None}  # the others: images


def test_a_quick_run_measures_every_stage_at_both_sizes_and_projects_and_plots(tmp_path):
    out, figure = tmp_path / "rows.json", tmp_path / "scale.png"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "benchmarks")])}
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_scale.py"), "--quick", "--work", str(tmp_path / "work")]
    subprocess.run([*cmd, "--json", str(out), "--plot", str(figure)], check=True, env={**env, "TQDM_DISABLE": "1"})

    rows = json.loads(out.read_text())
    sizes = bench_scale.QUICK_SIZES
    assert [(r["extra"]["name"], r["extra"]["rows"]) for r in rows] == [
        (name, n) for name in bench_scale.STAGES for n in sizes
    ]
    for r in rows:
        extra = r["extra"]
        counted = COUNTED.get(extra["name"], "images")
        result = extra["result"][counted] if counted else extra["result"]  # archive_check: the names kept
        assert result == extra["rows"], r["stage"]
        assert extra["seconds"] > 0 and r["unit"] in ("s", "MB")
        projected = extra["rows"] == sizes[-1]
        assert ("projected_peak_mb" in extra) == projected and ("projected to 10,000,000" in r["note"]) == projected
        if projected:
            assert extra["projected_rows"] == bench_scale.PROJECTED_ROWS
    assert figure.read_bytes().startswith(PNG)

    again = tmp_path / "again.png"  # the plot from the rows alone, nothing run
    subprocess.run([*cmd, "--replot", str(out), "--plot", str(again)], check=True, env=env)
    assert again.read_bytes().startswith(PNG)
