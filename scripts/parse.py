"""Rules `parse`, `list_units` and `parse_unit`: a raw DET/SEG dataset -> results/annotations/{dataset}.json
(COCO) and {dataset}.report.json; for a format that parses in units (Stanford Drone's videos),
`list_units` names them and `parse_unit` parses one, and `parse` joins their files."""

from remoteclip.config import dataset_spec
from remoteclip.convert import list_units, parse_dataset, parse_unit
from remoteclip.logs import rule_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]):
    spec = dataset_spec(sm.wildcards.dataset, sm.params.dataset)
    if sm.rule == "list_units":
        list_units(spec, sm.output.units)
    elif sm.rule == "parse_unit":
        parse_unit(spec, sm.wildcards.unit, sm.output.part)
    else:
        units = list(sm.input.units) or None
        parse_dataset(spec, sm.output.annotations, sm.output.report, units=units)
