"""Per-rule logging: everything a stage says goes to its log file under results/logs/
and to the terminal; an exception is logged with its traceback before it propagates.

Every scripts/*.py stage runs inside `rule_log(snakemake.log[0])`, so its log is the file under
results/logs/ that the rule's `log:` names. (The `train` rule is a shell command: it
redirects the output of `python -m remoteclip.train` to results/logs/train/{run}.log.)
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path


class _Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, data):
        for s in self.streams:
            s.write(data)
        return len(data)

    def flush(self):
        for s in self.streams:
            s.flush()

    def isatty(self):
        return False


@contextlib.contextmanager
def rule_log(path: str | Path | None, level: int = logging.INFO):
    """Tee stderr (tqdm, warnings, logging) into `path` for the duration of a stage."""
    if path is None:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        yield logging.getLogger("remoteclip")
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as fh:
        old = sys.stderr
        sys.stderr = _Tee(old, fh)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(level)
        try:
            yield logging.getLogger("remoteclip")
        except BaseException:
            logging.getLogger("remoteclip").exception("stage failed")
            raise
        finally:
            root.removeHandler(handler)
            sys.stderr = old
