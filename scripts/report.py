"""Rule `report`: tables, learning check, plots and DVC files under results/report/."""

from pathlib import Path

from remoteclip.logs import rule_log
from remoteclip.report import build_report

sm = snakemake  # noqa: F821 (injected by Snakemake)


def files(value):
    return [value] if isinstance(value, str) else list(value)


with rule_log(sm.log[0]):
    summary = files(sm.input.summary)  # none without evaluation models
    build_report(
        Path(sm.output.index).parent,
        summary=summary[0] if summary else None,
        results=files(sm.input.results),
        models=sm.params.models,
        runs=sm.params.runs,
        benchmarks=sm.params.benchmarks,
        captions=files(sm.input.captions),
        captions_summary=sm.input.captions_summary,
        dedup=dict(zip(sm.params.dedup_runs, files(sm.input.dedup))),
        leaderboard=sm.params.leaderboard,
        licences=sm.params.licences,
    )
