"""Rule `parse`: a raw DET/SEG dataset -> results/annotations/{dataset}.json (COCO) and
{dataset}.report.json."""

from remoteclip.config import dataset_spec
from remoteclip.convert import parse_dataset
from remoteclip.logs import rule_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]):
    spec = dataset_spec(sm.wildcards.dataset, sm.params.dataset)
    parse_dataset(spec, sm.output.annotations, sm.output.report)
