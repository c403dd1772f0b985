"""benchmarks/run_all.py: the README's performance table is benchmarks/results.md's content,
spliced between two marker lines; every benchmark it runs exists and names its peer. The
benchmarks themselves are not run here (they install their peers from PyPI and take minutes:
`make bench`)."""

from __future__ import annotations

import ast
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import run_all  # noqa: E402  (benchmarks/ is not a package)

BEGIN, END = run_all.README_MARKERS
RESULTS = "# Benchmark results\n\nMachine: two cores.\n\n| benchmark | ratio |\n|---|---|\n| `bench_m2b.py` | x4.9 |\n"


def test_the_readme_table_is_replaced_by_the_results_without_their_title():
    readme = f"# Project\n\n## Tests\n\nintro\n\n{BEGIN}\nold table\n{END}\n\nafter\n"
    updated = run_all.readme_with(readme, RESULTS)
    assert updated.startswith("# Project\n\n## Tests\n\nintro\n\n" + BEGIN + "\nMachine: two cores.")
    assert "old table" not in updated and "# Benchmark results" not in updated
    assert updated.endswith(f"| `bench_m2b.py` | x4.9 |\n{END}\n\nafter\n")
    assert run_all.readme_with(updated, RESULTS) == updated  # a second run changes nothing


@pytest.mark.parametrize(
    "readme",
    ["no markers at all\n", f"{END}\nreversed\n{BEGIN}\n", f"{BEGIN}\n{END}\n{BEGIN}\n{END}\n"],
    ids=["missing", "reversed", "twice"],
)
def test_a_readme_without_one_pair_of_markers_is_refused_naming_them(readme):
    with pytest.raises(SystemExit, match="README.md needs exactly one"):
        run_all.readme_with(readme, RESULTS)


def test_the_projects_readme_has_the_markers_once():
    readme = (REPO / "README.md").read_text()
    assert readme.count(BEGIN) == 1 and readme.count(END) == 1 and readme.index(BEGIN) < readme.index(END)


def test_every_benchmark_exists_takes_json_and_names_a_peer_in_its_docstring():
    for name, (script, _quick) in run_all.BENCHMARKS.items():
        source = (REPO / "benchmarks" / script).read_text()
        doc = ast.get_docstring(ast.parse(source)) or ""
        assert "add_json_flag" in source, f"{script} cannot write its rows for run_all"
        assert "peer" in doc.lower() or "against" in doc.lower(), f"{name}: {script}'s docstring names no peer"


def test_a_ratio_from_an_extrapolated_peer_time_says_so_in_its_own_cell():
    context = {"cpu": "x", "cores": 2, "python": "3", "torch": "2", "date": "d", "load_before": 0, "load_after": 0}
    context["shared"] = False
    rows = [
        {"stage": "measured", "ours_s": 1.0, "peer_s": 4.81, "ratio": 4.81, "peer": "p", "equal": "e", "note": ""},
        {"stage": "sampled", "ours_s": 0.0142, "peer_s": 65.3, "ratio": 4600.03, "peer": "p", "equal": "e", "note": ""},
    ]
    rows[1]["peer_extrapolated"] = True
    cells = {
        line.split(" | ")[1]: line.split(" | ")[4]
        for line in run_all.table({"dedup": (rows, 1.0, "")}, context, False).splitlines()
        if line.startswith("| `")
    }
    assert cells == {"measured": "x4.81", "sampled": "~x4,600 (extrapolated)"}
    assert run_all.ratio_cell(3.04, True) == "~x3.0 (extrapolated)"
