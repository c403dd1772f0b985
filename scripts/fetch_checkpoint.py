"""Rule `fetch_released_checkpoint`: download a released RemoteCLIP checkpoint, or say
where to put it by hand."""

from pathlib import Path

from remoteclip.download import DownloadError, fetch_file
from remoteclip.evaluate.models import MissingCheckpoint
from remoteclip.logs import rule_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]):
    dest = Path(sm.output[0])
    try:
        fetch_file(sm.params.url, dest)
    except DownloadError as err:
        raise MissingCheckpoint(f"could not download {sm.params.url} ({err}). Download it by hand and put it at "
                                f"{dest.resolve()}") from None
