"""Rules `fetch_archive`, `fetch_dataset`, `verify_archive`, `install_archive`, `fetch_images`,
`download` and `local_dataset`: one step each of workflow/rules/download.smk. `fetch_archive`
transfers one file of a catalogue dataset into <data>/archives/<dataset>/, `fetch_dataset` says
every file is fetched, `verify_archive` checks one file's checksums, `install_archive` extracts
or copies it into the dataset's root, `fetch_images` fetches the images of an installed URL list
with img2dataset (remoteclip.download.urllists), `download` writes the dataset's
<data>/raw/{dataset}/.verified from its files' markers, and `local_dataset` checks that a
dataset given by `root:` is there."""

import json
import shutil
from pathlib import Path

from remoteclip.config import dataset_spec
from remoteclip.download import fetch_archive, install_archive, mark_installed, markers_of, verify_archive
from remoteclip.download.files import Options
from remoteclip.download.urllists import UrlListSpec, fetch_url_list, installed_url_list
from remoteclip.logs import rule_log


def copy_beside(made: Path, wanted: Path) -> None:
    """A marker the library wrote under a `root:` elsewhere, where the rule promised it."""
    if made.resolve() != wanted.resolve():
        wanted.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(made, wanted)


sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]):
    spec = dataset_spec(sm.wildcards.dataset, sm.params.dataset)
    if sm.rule == "fetch_archive":
        archives = Path(sm.output.fetched).parent
        options = Options(retries=sm.params.retries, timeout=sm.params.timeout)
        fetch_archive(
            spec.name, sm.params.entry, sm.wildcards.archive, archives, spec.root, Path(sm.params.lock), options
        )
    elif sm.rule == "fetch_dataset":
        files = [json.loads(Path(p).read_text()) for p in sm.input.fetched]
        Path(sm.output.fetched).write_text(json.dumps({"dataset": spec.name, "files": files}, indent=2) + "\n")
    elif sm.rule == "verify_archive":
        archives = Path(sm.output.verified).parent
        verify_archive(spec.name, sm.params.entry, sm.wildcards.archive, archives, spec.root, Path(sm.params.lock))
    elif sm.rule == "install_archive":
        archives = Path(sm.input.verified).parent
        # verified again only if the file changed since its marker (a stat, not a read)
        record = verify_archive(
            spec.name, sm.params.entry, sm.wildcards.archive, archives, spec.root, Path(sm.params.lock)
        )
        install_archive(spec.name, sm.params.entry, sm.wildcards.archive, archives, spec.root, record)
        copy_beside(markers_of(archives, spec.root, sm.wildcards.archive).extracted, Path(sm.output.installed))
    elif sm.rule == "fetch_images":
        source = installed_url_list(spec.name, sm.params.entry, sm.wildcards.archive, spec.root)
        lists = UrlListSpec.from_entry(spec.name, sm.params.entry["img2dataset"])
        summary = fetch_url_list(source, spec.root, lists, Path(sm.params.packages))
        Path(sm.output.summary).write_text(json.dumps(summary, indent=2) + "\n")
    elif sm.rule == "download":
        archives = Path(sm.params.archives)
        copy_beside(mark_installed(spec.name, sm.params.entry, archives, spec.root), Path(sm.output.marker))
    else:
        if not spec.root.is_dir():
            raise FileNotFoundError(
                f"dataset {spec.name!r}: its root {spec.root.absolute()} does not exist "
                f"(datasets.{spec.name}.root in the config); put the data there or fix the path"
            )
        marker = Path(sm.output.marker)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"dataset": spec.name, "root": str(spec.root.absolute()), "local": True}) + "\n")
