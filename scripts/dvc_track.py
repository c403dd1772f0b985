"""Rule `dvc_track`: dvc add + dvc push of the configured artifacts (`dvc.artifacts`); writes
results/<artifact>.dvc pointers and results/dvc_track.json (what was tracked and pushed)."""

import json

from remoteclip.dvc import track
from remoteclip.logs import rule_log

sm = snakemake  # noqa: F821 (injected by Snakemake)
with rule_log(sm.log[0]):
    cfg = sm.params.dvc
    record = track(cfg["artifacts"], cfg["remote"], cfg["remote_name"], cfg["push"])
    with open(sm.output.record, "w") as fh:
        json.dump(record, fh, indent=1)
