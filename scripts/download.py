"""Rules `download` (fetch and verify a catalogue dataset) and `local_dataset` (check that a
dataset given by `root:` is there): both write results/raw/{dataset}/.verified."""

import json
import shutil
from pathlib import Path

from remoteclip.config import dataset_spec
from remoteclip.download import fetch_dataset
from remoteclip.logs import rule_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]):
    spec = dataset_spec(sm.wildcards.dataset, sm.params.dataset)
    marker = Path(sm.output.marker)
    if "entry" in sm.params.keys():
        fetch_dataset(spec.name, sm.params.entry, spec.root, Path(sm.params.lock),
                      retries=sm.params.retries, timeout=sm.params.timeout)
        if spec.marker.resolve() != marker.resolve():  # downloaded into a `root:` elsewhere
            marker.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(spec.marker, marker)
    else:
        if not spec.root.is_dir():
            raise FileNotFoundError(f"dataset {spec.name!r}: its root {spec.root.absolute()} does not exist "
                                    f"(datasets.{spec.name}.root in the config); put the data there or fix the path")
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"dataset": spec.name, "root": str(spec.root.absolute()), "local": True}) + "\n")
