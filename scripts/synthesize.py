"""Rule `synthesize`: render one demo dataset in its source's real on-disk format into
<data>/raw/{dataset}/, with its .verified marker."""

from pathlib import Path

from remoteclip.logs import rule_log
from remoteclip.synthetic import SynthSpec, synthesize, write_marker

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]):
    dataset, defaults = sm.params.dataset, sm.params.defaults
    synth = dict(dataset["synthetic"])
    spec = SynthSpec(
        name=sm.wildcards.dataset,
        seed=sm.params.seed,
        size=synth.pop("size", defaults["size"]),
        clutter=synth.pop("clutter", defaults["clutter"]),
        **synth,
    )
    root = Path(sm.output.marker).parent
    truth = synthesize(spec, root, workers=sm.threads)
    write_marker(root, spec, truth)
