"""Rule `captions_summary`: per-dataset images, boxes, captions and skips in one JSON,
results/captions/summary.json (from every results/captions/{dataset}.report.json)."""

from remoteclip.convert import summarize
from remoteclip.logs import rule_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]):
    summarize(list(sm.input.reports), sm.output.summary)
