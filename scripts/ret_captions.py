"""Rule `ret_captions`: a retrieval dataset's human captions (train split) ->
results/captions/{dataset}.jsonl and {dataset}.report.json."""

from remoteclip.config import dataset_spec
from remoteclip.convert import ret_dataset
from remoteclip.logs import rule_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]):
    spec = dataset_spec(sm.wildcards.dataset, sm.params.dataset)
    ret_dataset(spec, sm.output.captions, sm.output.report)
