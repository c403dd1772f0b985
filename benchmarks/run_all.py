"""Run every benchmark against its peer and write benchmarks/results.md (what `make bench` does).

Each benchmark runs in a process of its own (peers are put on its path, not on this one's) with
its default sizes unless `--quick` (tiny sizes: checks that everything runs, the numbers mean
little) and writes its rows as JSON; this script adds the machine and writes the table.

    .venv/bin/python benchmarks/run_all.py [--only m2b dedup ...] [--quick] [--out benchmarks/results.md] [--readme]

With `--readme` (what `make bench` passes on a full run) the README's performance table is
replaced by the file's content, between the two README_MARKERS lines, so the two never disagree.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import REPO, machine

HERE = Path(__file__).resolve().parent
README_MARKERS = (
    "<!-- benchmarks/results.md: begin (make bench writes this) -->",
    "<!-- benchmarks/results.md: end -->",
)
# name: (script, arguments of a quick run)
BENCHMARKS = {
    "m2b": ("bench_m2b.py", ["--masks", "6", "--size", "256", "--scale", "0.05"]),
    "dedup": (
        "bench_dedup.py",
        ["--sizes", "2000", "--queries", "100", "--bucket-size", "2000", "--equal", "200", "--scenes", "4"]
        + ["--train", "20000", "--test", "2000", "--peer-sample", "5000", "--brute-sample", "5000"],
    ),
    "shards": ("bench_shards.py", ["--images", "100"]),
    "reader": ("bench_reader.py", ["--shards", "20", "--per-shard", "50", "--reads", "300", "--sizes", "5000"]),
    "train": ("bench_train.py", ["--steps", "8", "--images", "512", "--loader-seconds", "2"]),
    "eval": (
        "bench_eval.py",
        "--cls-images 60 --ret-images 30 --resisc-per-class 10 --ret-large 40 --probe-rows 2000".split(),
    ),
    "scale": ("bench_scale.py", ["--quick"]),
    "web": ("bench_web.py", ["--samples", "300", "--image-kb", "4"]),
    "caption_table": ("bench_caption_table.py", ["--rows", "2000"]),
}


def run_one(name: str, quick: bool, extra: list[str]) -> tuple[list[dict], float, str]:
    """(rows, wall seconds, error text or "") of one benchmark."""
    script, quick_args = BENCHMARKS[name]
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, str(HERE / script), "--json", out.name, *(quick_args if quick else []), *extra]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(HERE)]),
            "HF_HUB_OFFLINE": "1",
            "TQDM_DISABLE": "1",
        }
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            return [], seconds, (proc.stdout + proc.stderr)[-2000:]
        return json.loads(Path(out.name).read_text()), seconds, ""


def number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.3g} {unit}" if value < 100 else f"{value:,.0f} {unit}"


def table(results: dict[str, tuple[list[dict], float, str]], context: dict, quick: bool) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`benchmarks/run_all.py`); each benchmark's docstring says what is compared and how.",
        "Ratio = peer time / our time (above 1: ours is faster), one run each, on the same input; every row's",
        "equality check passed (a failed check stops that benchmark, listed under Failures).",
        "",
        f"Machine: {context['cpu']}, {context['cores']} cores, Python {context['python']}, torch {context['torch']}; "
        f"{context['date']}; load average (1 min) {context['load_before']} before and {context['load_after']} after "
        "the run" + (" (shared with other jobs: timings are noisy)" if context["shared"] else "") + ".",
    ]
    if quick:
        lines += ["", "**Quick run (tiny sizes): checks that everything runs; the ratios mean little.**"]
    lines += [
        "",
        "| benchmark | stage | ours | peer | ratio | peer library | asserted equal | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    failures = []
    for name, (rows, seconds, error) in results.items():
        if error:
            failures.append(f"- `{name}` ({seconds:.0f} s): {error.strip().splitlines()[-1]}")
        for row in rows:
            ratio = ratio_cell(row["ratio"], row.get("peer_extrapolated", False))
            unit = row.get("unit", "s")
            cells = [
                f"`{BENCHMARKS[name][0]}`",
                row["stage"],
                number(row["ours_s"], unit),
                number(row["peer_s"], unit),
                ratio,
                row["peer"],
                row["equal"],
                row["note"],
            ]
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    lines += ["", "Wall time per benchmark: " + ", ".join(f"{n} {s:.0f} s" for n, (_, s, _) in results.items()) + "."]
    if failures:
        lines += ["", "## Failures", "", *failures]
    return "\n".join(lines) + "\n"


def ratio_cell(ratio: float | None, extrapolated: bool) -> str:
    """x4.81; a ratio from an extrapolated peer time says so itself, to two significant digits
    (~x4,600 (extrapolated)): the extrapolation is not more precise than that."""
    if ratio is None:
        return "-"
    if not extrapolated:
        return f"x{ratio:.2f}"
    return f"~x{float(f'{ratio:.2g}'):,.0f} (extrapolated)" if ratio >= 10 else f"~x{ratio:.1f} (extrapolated)"


def readme_with(readme: str, results_md: str) -> str:
    """`readme` with the text between README_MARKERS replaced by `results_md` (its title dropped:
    the README's own heading introduces it)."""
    begin, end = README_MARKERS
    if readme.count(begin) != 1 or readme.count(end) != 1 or readme.index(begin) > readme.index(end):
        raise SystemExit(f"README.md needs exactly one {begin!r} line followed by one {end!r} line")
    body = results_md.split("\n", 1)[1].strip() if results_md.startswith("# ") else results_md.strip()
    head, rest = readme.split(begin, 1)
    return f"{head}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    ap.add_argument("--out", default=str(HERE / "results.md"))
    ap.add_argument("--readme", action="store_true", help="put the table into README.md (refused with --quick)")
    args = ap.parse_args()
    if args.readme and args.quick:
        ap.error("--readme takes a full run's numbers, not --quick ones")
    load_before = os.getloadavg()[0]
    results = {}
    for name in args.only:
        print(f"== {name}", flush=True)
        results[name] = run_one(name, args.quick, [])
        rows, seconds, error = results[name]
        print(f"   {len(rows)} rows in {seconds:.0f} s" + (f"\n   FAILED: {error[-500:]}" if error else ""), flush=True)
    context = machine()
    context.update(load_before=round(load_before, 2), load_after=context["load_1min"])
    context["shared"] = max(load_before, context["load_1min"]) > 0.5 * (context["cores"] or 1) + 0.5
    results_md = table(results, context, args.quick)
    Path(args.out).write_text(results_md)
    print(f"wrote {args.out}")
    if args.readme:
        readme = REPO / "README.md"
        readme.write_text(readme_with(readme.read_text(), results_md))
        print(f"updated the performance table in {readme}")
    if any(error for _, _, error in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
