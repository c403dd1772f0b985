"""The config schema, workflow/schemas/config.schema.yaml: the one place where every config
default is written. The validator (`config.validate`) fills them into a config, and code that
needs a default outside a validated config (dataclass fields, keyword defaults) reads it here,
so changing a default in the schema changes it everywhere.

The schema is found in this checkout, as `models.config_dirs` finds config/models: every
environment installs the package editable from the checkout (envs/install-remoteclip.sh), and
one file, not a copy in the package, cannot drift from what the workflow validates against.
Only yaml is needed here (no jsonschema): the training environment reads its defaults too.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def load(path: str | Path | None = None) -> dict:
    """The schema as a dict (`SCHEMA` unless `path` is given); shared, so do not change it."""
    path = Path(path or SCHEMA)
    if not path.is_file():
        raise FileNotFoundError(
            f"config schema {path} not found: remoteclip reads its defaults from the "
            "checkout's workflow/schemas/ (install the checkout: pip install -e .)"
        )
    return _read(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read(path: Path, mtime_ns: int) -> dict:
    # keyed on the modification time too: an edited schema is read again
    return yaml.safe_load(path.read_text())


def defaults(key: str, path: str | Path | None = None) -> dict[str, Any]:
    """What the validator fills in below a config key when the config gives nothing there:
    "evaluation.knn" -> {"k": 20, "temperature": 0.07}, "" the top level; a definition is named
    "$defs.train" (what every `runs.<name>.train` starts from). A fresh copy, free to change."""
    return _filled(_node(load(path), key))


def _node(schema: dict, key: str) -> dict:
    parts = key.split(".") if key else []
    node, rest = (schema["$defs"][parts[1]], parts[2:]) if parts[:1] == ["$defs"] else (schema, parts)
    for part in rest:
        node = node["properties"][part]
    return node


def _filled(node: dict) -> dict[str, Any]:
    """The defaults of an object's properties, as the validator fills them in: a default is
    copied, then the properties it leaves out get their own defaults."""
    out = {}
    for name, sub in node.get("properties", {}).items():
        if "default" in sub:
            value = copy.deepcopy(sub["default"])
            out[name] = {**_filled(sub), **value} if isinstance(value, dict) and "properties" in sub else value
    return out
