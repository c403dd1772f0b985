"""Rules `fetch_dataset` (transfer a catalogue dataset's files into <data>/archives/<dataset>/),
`download` (verify and unpack them into the dataset's root) and `local_dataset` (check that a
dataset given by `root:` is there). `download` and `local_dataset` write
<data>/raw/{dataset}/.verified."""

import json
import shutil
from pathlib import Path

from remoteclip.config import dataset_spec
from remoteclip.download import fetch_archives, install_archives
from remoteclip.logs import rule_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]):
    spec = dataset_spec(sm.wildcards.dataset, sm.params.dataset)
    if sm.rule == "fetch_dataset":
        archives = Path(sm.output.fetched).parent
        fetch_archives(
            spec.name,
            sm.params.entry,
            archives,
            spec.root,
            Path(sm.params.lock),
            retries=sm.params.retries,
            timeout=sm.params.timeout,
        )
    elif sm.rule == "download":
        marker = Path(sm.output.marker)
        install_archives(spec.name, sm.params.entry, Path(sm.input.fetched).parent, spec.root, Path(sm.params.lock))
        if spec.marker.resolve() != marker.resolve():  # installed into a `root:` elsewhere
            marker.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(spec.marker, marker)
    else:
        if not spec.root.is_dir():
            raise FileNotFoundError(
                f"dataset {spec.name!r}: its root {spec.root.absolute()} does not exist "
                f"(datasets.{spec.name}.root in the config); put the data there or fix the path"
            )
        marker = Path(sm.output.marker)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"dataset": spec.name, "root": str(spec.root.absolute()), "local": True}) + "\n")
