"""Configuration: JSON-Schema validation with defaults, and typed views of the config.

Errors name the key's path (`datasets.demo_dota.format`), say what is wrong and, for a
misspelled key, suggest the closest allowed one. Defaults come from the schema.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .formats import PARSER_OPTIONS

GROUPS_CAPTIONED = ("RET", "DET", "SEG")
COMMON_OPTIONS = {"aliases", "ignore_classes", "keep_classes", "vocabulary"}


class ConfigError(ValueError):
    pass


def _with_defaults(cls):
    """A validator that fills `default:` values in before checking (jsonschema FAQ recipe)."""
    validate_properties = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": set_defaults})


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    where = _path(error)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed and not any(
            re.match(p, k) for p in error.schema.get("patternProperties", {}))]
        parts = []
        for key in extra:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"
            prefix = f"{where}." if error.absolute_path else ""
            parts.append(f"{prefix}{key}: unknown key{hint}")
        return "; ".join(parts)
    return f"{where}: {error.message}"


def validate(config: dict, schema_path: str | Path) -> dict:
    """Validate `config` in place (defaults filled in); ConfigError lists every problem."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    messages = [_describe(e) for e in errors]
    messages += _semantic_errors(config)
    if messages:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(dict.fromkeys(messages)))
    return config


def _semantic_errors(config: dict) -> list[str]:
    """What JSON Schema cannot say: parser option names depend on the format, and runs and
    de-duplication may only name configured datasets of the right group."""
    errors = _reference_errors(config)
    for name, spec in (config.get("datasets") or {}).items():
        fmt = spec.get("format") if isinstance(spec, dict) else None
        if fmt not in PARSER_OPTIONS:
            continue
        defaults = PARSER_OPTIONS[fmt]
        allowed = set(defaults) | COMMON_OPTIONS
        for key in (spec.get("options") or {}):
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(sorted(allowed))})"
                errors.append(f"datasets.{name}.options.{key}: unknown option for format {fmt!r}{hint}")
    return errors


def _reference_errors(config: dict) -> list[str]:
    datasets = config.get("datasets") or {}
    errors = []
    for run, spec in (config.get("runs") or {}).items():
        for i, source in enumerate(spec.get("sources") or []):
            if source.startswith("@"):
                if source[1:] not in GROUPS_CAPTIONED:
                    errors.append(f"runs.{run}.sources.{i}: unknown group {source!r} (use @RET, @DET or @SEG)")
            elif source not in datasets:
                close = difflib.get_close_matches(source, list(datasets), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                errors.append(f"runs.{run}.sources.{i}: {source!r} is not a configured dataset{hint}")
            elif datasets[source].get("group") not in GROUPS_CAPTIONED:
                errors.append(f"runs.{run}.sources.{i}: {source!r} is a {datasets[source].get('group')} benchmark, "
                              "not a training source")
    for i, name in enumerate((config.get("dedup") or {}).get("against") or []):
        if name not in datasets:
            errors.append(f"dedup.against.{i}: {name!r} is not a configured dataset")
        elif datasets[name].get("group") not in ("RET", "CLS", "COUNT"):
            errors.append(f"dedup.against.{i}: {name!r} has no evaluation test split (group {datasets[name].get('group')})")
    return errors


def run_sources(config: dict, run: str) -> list[str]:
    """A run's sources with @GROUP expanded, in the order given (the dedup keep-order)."""
    out: list[str] = []
    for source in config["runs"][run]["sources"]:
        names = ([n for n, d in config["datasets"].items() if d["group"] == source[1:]]
                 if source.startswith("@") else [source])
        out += [n for n in names if n not in out]
    return out


def protected_testsets(config: dict) -> list[str]:
    against = config["dedup"]["against"]
    if against is None:
        against = [n for n, d in config["datasets"].items() if d["group"] in ("RET", "CLS", "COUNT")]
    return sorted(against)


@dataclasses.dataclass
class DatasetSpec:
    name: str
    group: str
    format: str
    root: Path
    options: dict[str, Any]
    synthetic: dict[str, Any] | None
    strict: bool

    @property
    def marker(self) -> Path:
        return self.root / ".verified"


def dataset_spec(name: str, spec: dict) -> DatasetSpec:
    root = Path(spec.get("root") or f"results/raw/{name}")
    return DatasetSpec(name, spec["group"], spec["format"], root, spec.get("options") or {},
                       spec.get("synthetic"), bool(spec.get("strict", False)))


def dataset_specs(config: dict) -> dict[str, DatasetSpec]:
    return {name: dataset_spec(name, spec) for name, spec in config["datasets"].items()}


def load(path: str | Path, schema_path: str | Path) -> dict:
    """Read a YAML config file and validate it (for scripts and tests; Snakemake has its own loader)."""
    config = yaml.safe_load(Path(path).read_text()) or {}
    return validate(config, schema_path)
