"""The model zoo, config/models.yaml: released CLIP models as data (schema
workflow/schemas/models.schema.yaml). A workflow config scores one as `{zoo: <name>}`
(`evaluate.registry.resolve`); `evaluation.leaderboard` scores all of them under named prompt
protocols. A catalogue only: where an entry's weights lie once fetched is `weights.cache`,
fetching them `weights.fetch`, loading them by their release format `models.loaders`.

Read while Snakemake builds the DAG, so this imports neither torch nor open_clip. Errors name
the file, the entry and the key (`invalid model zoo config/models.yaml: GeoRSCLIP-B32.family:
...`), or, for an unknown name, the closest entry.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .config import ConfigError, describe_error, with_defaults
from .data.published import CITATION, paper_results

ZOO_SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "models.schema.yaml"


class ZooError(ConfigError):
    pass


def load_zoo(path: str | Path, schema_path: str | Path = ZOO_SCHEMA) -> dict[str, dict[str, Any]]:
    """The zoo's entries by name, validated, with the schema's defaults filled in and each
    `paper_row`'s numbers (from paper_results.csv) joined to its `published`."""
    return _read(path, schema_path)["models"]


def zoo_protocols(path: str | Path, schema_path: str | Path = ZOO_SCHEMA) -> dict[str, dict[str, Any]]:
    """The protocols the zoo's published numbers were measured with, by name."""
    return _read(path, schema_path)["protocols"]


def _read(path: str | Path, schema_path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"model zoo {path} not found (set `zoo:` in the config)")
    return _load(path.resolve(), path.stat().st_mtime_ns, str(schema_path), str(path))


@functools.lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int, schema_path: str, shown: str) -> dict[str, Any]:
    # keyed on the modification time: an edited zoo is read again
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ZooError(f"model zoo {shown} is not valid YAML: {exc}") from None
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        messages = dict.fromkeys(describe_error(e).removeprefix("models.") for e in errors)
        raise ZooError(f"invalid model zoo {shown}:\n  " + "\n  ".join(messages))
    for name, model in doc["models"].items():
        if model.get("paper_row"):
            model["published"] = model["published"] + paper_row_numbers(model["paper_row"], f"{shown}: {name}")
        for i, number in enumerate(model["published"]):
            _check_protocol(doc["protocols"], number, f"{shown}: {name}.published.{i}")
    return doc


def paper_row_numbers(paper_row: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """A `paper_row`'s numbers in the zoo's `published` layout, read from paper_results.csv."""
    rows = sorted({row["model"] for row in paper_results()})
    if paper_row["row"] not in rows:
        raise ZooError(
            f"{where}.paper_row.row: {paper_row['row']!r} is not a row of paper_results.csv ({', '.join(rows)})"
        )
    notes = {"notes": paper_row["notes"]} if paper_row.get("notes") else {}
    return [
        {
            **{key: row[key] for key in ("benchmark", "task", "metric", "value")},
            "source": f"{CITATION} {row['source'].removeprefix('paper ')}",
            "protocol": paper_row["protocol"],
            **notes,
        }
        for row in paper_results()
        if row["model"] == paper_row["row"]
    ]


def _check_protocol(protocols: dict[str, Any], number: dict[str, Any], where: str) -> None:
    """A published number names a protocol of the zoo, and that protocol says how its task was run."""
    name = number["protocol"]
    if name not in protocols:
        raise ZooError(
            f"{where}.protocol: {name!r} is not a protocol of the zoo (protocols: {', '.join(protocols) or 'none'})"
        )
    if number["task"] not in protocols[name]:
        raise ZooError(
            f"{where}: protocol {name!r} says nothing about {number['task']}; "
            f"give its conditions under protocols.{name}.{number['task']} (`unknown` where not stated)"
        )


def entry(zoo: dict[str, dict[str, Any]], name: str, where: str = "zoo") -> dict[str, Any]:
    """One entry by name; an unknown name is an error that suggests the closest one."""
    if name not in zoo:
        close = difflib.get_close_matches(name, list(zoo), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (entries: {', '.join(sorted(zoo))})"
        raise ZooError(f"{where}: {name!r} is not an entry of the model zoo{hint}")
    return zoo[name]
