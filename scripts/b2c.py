"""Rule `b2c`: results/annotations/{dataset}.json -> five captions per image (Box-to-Caption),
written to results/captions/{dataset}.jsonl and {dataset}.report.json."""

from remoteclip.b2c import B2CSettings, load_templates
from remoteclip.config import dataset_spec
from remoteclip.convert import b2c_dataset
from remoteclip.logs import rule_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]):
    spec = dataset_spec(sm.wildcards.dataset, sm.params.dataset)
    settings = B2CSettings(
        templates=load_templates(sm.input.templates),
        **{k: tuple(v) if k == "center_region" else v for k, v in sm.params.b2c.items()},
    )
    b2c_dataset(spec, sm.input.annotations, sm.input.parse_report, settings, sm.output.captions, sm.output.report)
