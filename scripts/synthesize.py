"""Rule `synthesize`: render one demo dataset in its source's real on-disk format into
<data>/raw/{dataset}/, with its .verified marker."""

from pathlib import Path

from remoteclip.logs import rule_log
from remoteclip.synthetic import spec_from_config, synthesize, write_marker

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]):
    defaults, seed = sm.params.defaults, sm.params.seed
    spec = spec_from_config(sm.wildcards.dataset, sm.params.dataset["synthetic"], defaults, seed)
    copies = [(spec_from_config(c["name"], c["synthetic"], defaults, seed), c["indices"]) for c in sm.params.copies]
    root = Path(sm.output.marker).parent
    truth = synthesize(spec, root, workers=sm.threads, copies=copies)
    write_marker(root, spec, truth)
