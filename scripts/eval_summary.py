"""Rule `eval_summary`: every result in one long CSV (model, benchmark, task, metric, value),
results/eval/summary.csv."""

from remoteclip.evaluate.summary import write_summary
from remoteclip.logs import rule_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]):
    write_summary(list(sm.input.results), sm.output.summary)
