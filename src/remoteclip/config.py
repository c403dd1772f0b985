"""Configuration: JSON-Schema validation with defaults, and typed views of the config.

Errors name the key's path (`datasets.demo_dota.format`), say what is wrong and, for a
misspelled key, suggest the closest allowed one. Defaults come from the schema.

A dataset may name an entry of the dataset catalogue (`catalogue: DOTA`) instead of
giving its group, format and options: `resolve_catalogue` fills them in from the entry
right after validation, and the entry's stated image count (`images`) where it applies.
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

from . import schema as config_schema
from .formats import CAPTION_PARSERS, PARSER_OPTIONS

GROUPS_CAPTIONED = ("RET", "DET", "SEG", "WEB")  # training sources; WEB: web corpora, never benchmarks
# groups whose captions a caption format reads (the others are parsed to boxes, then B2C)
GROUPS_OWN_CAPTIONS = ("RET", "WEB")
CATALOGUE_SCHEMA = Path("workflow/schemas/datasets.schema.yaml")  # relative to the workflow directory
COMMON_OPTIONS = {"aliases", "ignore_classes", "keep_classes", "vocabulary"}
# parser options that choose which part of a dataset is read (every parser names them so)
SPLIT_OPTIONS = ("splits", "split", "split_lists", "split_folders")


class ConfigError(ValueError):
    pass


def with_defaults(cls):
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


def describe_error(error: jsonschema.ValidationError) -> str:
    where = _path(error)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        extra = [
            k
            for k in error.instance
            if k not in allowed and not any(re.match(p, k) for p in error.schema.get("patternProperties", {}))
        ]
        parts = []
        for key in extra:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"
            prefix = f"{where}." if error.absolute_path else ""
            parts.append(f"{prefix}{key}: unknown key{hint}")
        return "; ".join(parts)
    return f"{where}: {error.message}"


def validate(config: dict, schema_path: str | Path | None = None) -> dict:
    """Validate `config` in place (defaults filled in); ConfigError lists every problem.
    `schema_path`: the workflow's config schema unless given (remoteclip.schema)."""
    schema = yaml.safe_load(Path(schema_path or config_schema.SCHEMA).read_text())
    validator = with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    messages = [describe_error(e) for e in errors]
    messages += _semantic_errors(config)
    if messages:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(dict.fromkeys(messages)))
    return config


def _semantic_errors(config: dict) -> list[str]:
    """What JSON Schema cannot say: parser option names depend on the format, and runs and
    de-duplication may only name configured datasets of the right group. A catalogue
    dataset's group and format are unknown until `resolve_catalogue`, which checks again."""
    errors = _reference_errors(config)
    for name, spec in (config.get("datasets") or {}).items():
        if not isinstance(spec, dict):
            continue
        if spec.get("synthetic") is not None and spec.get("catalogue"):
            errors.append(
                f"datasets.{name}: give either 'synthetic' (render it) or 'catalogue' (download it), not both"
            )
        errors += _format_errors(f"datasets.{name}", spec.get("group"), spec.get("format"), spec.get("options"))
    return errors


def _format_errors(where: str, group: str | None, fmt: str | None, options: dict | None) -> list[str]:
    """Options the format does not know, and a format that does not fit the group (the
    caption stage reads RET and WEB datasets with a caption parser, the box stages the others)."""
    if fmt not in PARSER_OPTIONS:
        return []
    errors = []
    if group is not None and (group in GROUPS_OWN_CAPTIONS) != (fmt in CAPTION_PARSERS):
        if group in GROUPS_OWN_CAPTIONS:
            errors.append(
                f"{where}.format: group {group} needs a caption format ({', '.join(sorted(CAPTION_PARSERS))}), "
                f"not {fmt!r}"
            )
        else:
            errors.append(
                f"{where}.format: {fmt!r} is a caption format, for groups RET and WEB only (group is {group})"
            )
    allowed = set(PARSER_OPTIONS[fmt]) | COMMON_OPTIONS
    for key in options or {}:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(sorted(allowed))})"
            errors.append(f"{where}.options.{key}: unknown option for format {fmt!r}{hint}")
    return errors


def _reference_errors(config: dict) -> list[str]:
    datasets = config.get("datasets") or {}
    errors = []
    for run, spec in (config.get("runs") or {}).items():
        for i, source in enumerate(spec.get("sources") or []):
            if source.startswith("@"):
                if source[1:] not in GROUPS_CAPTIONED:
                    errors.append(f"runs.{run}.sources.{i}: unknown group {source!r} (use @RET, @DET, @SEG or @WEB)")
            elif source not in datasets:
                close = difflib.get_close_matches(source, list(datasets), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                errors.append(f"runs.{run}.sources.{i}: {source!r} is not a configured dataset{hint}")
            elif datasets[source].get("group") not in (*GROUPS_CAPTIONED, None):
                errors.append(
                    f"runs.{run}.sources.{i}: {source!r} is a {datasets[source].get('group')} benchmark, "
                    "not a training source"
                )
    errors += _weight_errors(config, datasets)
    for i, name in enumerate((config.get("dedup") or {}).get("against") or []):
        if name not in datasets:
            errors.append(f"dedup.against.{i}: {name!r} is not a configured dataset")
        elif datasets[name].get("group") not in ("RET", "CLS", "COUNT", None):
            errors.append(
                f"dedup.against.{i}: {name!r} has no evaluation test split (group {datasets[name].get('group')})"
            )
    return errors + _evaluation_errors(config, datasets)


def _weight_errors(config: dict, datasets: dict) -> list[str]:
    """A weight names a source of its run. A catalogue dataset's group is unknown before
    `resolve_catalogue` (which checks again), so until then it may belong to an @GROUP source."""
    errors = []
    for run, spec in (config.get("runs") or {}).items():
        sources = spec.get("sources") or []
        groups = {s[1:] for s in sources if s.startswith("@")}
        for name in spec.get("weights") or {}:
            if name not in datasets:
                close = difflib.get_close_matches(name, list(datasets), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                errors.append(f"runs.{run}.weights.{name}: {name!r} is not a configured dataset{hint}")
            elif name not in sources and datasets[name].get("group") not in groups | {None}:
                errors.append(
                    f"runs.{run}.weights.{name}: {name!r} is not a source of run {run!r} "
                    f"(its sources: {', '.join(sources)})"
                )
    return errors


def _evaluation_errors(config: dict, datasets: dict) -> list[str]:
    evaluation = config.get("evaluation") or {}
    runs = config.get("runs") or {}
    errors = []
    for name, entry in (evaluation.get("models") or {}).items():
        kinds = [k for k in ("run", "released", "arch", "zoo") if k in entry]
        if len(kinds) != 1:
            errors.append(
                f"evaluation.models.{name}: give exactly one of run, released, arch or zoo (got {kinds or 'none'})"
            )
        elif "run" in entry and entry["run"] not in runs:
            errors.append(f"evaluation.models.{name}.run: {entry['run']!r} is not a configured run")
    for i, name in enumerate(evaluation.get("benchmarks") or []):
        if name not in datasets:
            errors.append(f"evaluation.benchmarks.{i}: {name!r} is not a configured dataset")
        elif datasets[name].get("group") not in ("RET", "CLS", "COUNT"):
            errors.append(
                f"evaluation.benchmarks.{i}: {name!r} is a {datasets[name].get('group')} source, not a benchmark"
            )
    return errors


def evaluation_benchmarks(config: dict) -> list[str]:
    chosen = config["evaluation"]["benchmarks"]
    if chosen is None:
        chosen = [n for n, d in config["datasets"].items() if d["group"] in ("RET", "CLS", "COUNT")]
    return sorted(chosen)


def resolve_path(path: str | Path, workflow_dir: str | Path | None = None) -> Path:
    """A config path as written: relative to the working directory, or, when it is not
    there, to the workflow directory, so a run started elsewhere (`snakemake -d`) still
    finds the catalogue and lock file shipped beside the Snakefile."""
    path = Path(path)
    if path.is_absolute() or path.exists() or workflow_dir is None:
        return path
    shipped = Path(workflow_dir) / path
    return shipped if shipped.exists() else path


def load_catalogue(path: str | Path, schema_path: str | Path) -> dict[str, dict]:
    """The catalogue's entries by name, checked against its schema, the parser registry and
    the parsers' options; ConfigError naming the file, the entry and the key otherwise."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"dataset catalogue {path} not found (set `catalogue:` in the config)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"dataset catalogue {path} is not valid YAML: {exc}") from None
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    messages = [_entry_path(_describe_catalogue(e)) for e in errors]
    entries = doc.get("datasets") if isinstance(doc, dict) else None
    for name, entry in (entries if isinstance(entries, dict) else {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("format"), str):
            continue
        if entry["format"] not in PARSER_OPTIONS:
            close = difflib.get_close_matches(entry["format"], sorted(PARSER_OPTIONS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (registered: {', '.join(sorted(PARSER_OPTIONS))})"
            messages.append(f"{name}.format: {entry['format']!r} is not a registered parser{hint}")
        messages += _format_errors(name, entry.get("group"), entry["format"], entry.get("options"))
    if messages:
        raise ConfigError(f"invalid dataset catalogue {path}:\n  " + "\n  ".join(dict.fromkeys(messages)))
    assert isinstance(entries, dict)  # the schema requires the `datasets` mapping
    return entries


def _describe_catalogue(error: jsonschema.ValidationError) -> str:
    if error.validator == "anyOf" and error.schema.get("anyOf") == [{"required": ["files"]}, {"required": ["manual"]}]:
        return f"{_path(error)}: lists no files: give `files` (downloaded), `manual` (fetched by hand) or both"
    return describe_error(error)


def _entry_path(message: str) -> str:
    """`datasets.DOTA.files.0.md5: ...` -> `DOTA.files.0.md5: ...`: every entry sits under `datasets`."""
    return message.removeprefix("datasets.")


def resolve_catalogue(config: dict, workflow_dir: str | Path) -> dict[str, dict]:
    """Fill in group, format and options of every dataset that names a catalogue entry
    (values in the config win; options are merged key by key) and check the result.

    Returns {dataset name: its catalogue entry}, what the download rule fetches. The
    catalogue is read only when some dataset names it, so configs without catalogue
    datasets need no catalogue file."""
    datasets = config.get("datasets") or {}
    wanted = {name: spec["catalogue"] for name, spec in datasets.items() if spec.get("catalogue")}
    if not wanted:
        return {}
    path = resolve_path(config.get("catalogue", config_schema.defaults("")["catalogue"]), workflow_dir)
    catalogue = load_catalogue(path, Path(workflow_dir) / CATALOGUE_SCHEMA)
    errors, entries = [], {}
    for name, entry_name in wanted.items():
        entry = catalogue.get(entry_name)
        if entry is None:
            close = difflib.get_close_matches(entry_name, list(catalogue), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            errors.append(f"datasets.{name}.catalogue: {entry_name!r} is not an entry of {path}{hint}")
            continue
        spec = datasets[name]
        spec.setdefault("group", entry["group"])
        spec.setdefault("format", entry["format"])
        if entry.get("classes"):
            spec["classes"] = {**entry["classes"], **(spec.get("classes") or {})}
        if "images" not in spec:
            spec["images"] = stated_images(entry, spec.get("options") or {})
        spec["options"] = {**copy.deepcopy(entry.get("options") or {}), **(spec.get("options") or {})}
        entries[name] = entry
    if not errors:
        errors = _semantic_errors(config)
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(dict.fromkeys(errors)))
    return entries


def stated_images(entry: dict, given_options: dict) -> dict | None:
    """The entry's stated image count where it applies to a dataset configured with these
    options. A per-split count always applies (the stages sum the splits they read); a
    whole-dataset count only while the config keeps the entry's split selection, since a
    config that reads one split of it would otherwise fall short of the count."""
    images = entry.get("images")
    if images is None or not isinstance(images["count"], int):
        return copy.deepcopy(images)
    own = {**PARSER_OPTIONS.get(entry["format"], {}), **(entry.get("options") or {})}
    if any(key in given_options and given_options[key] != own.get(key) for key in SPLIT_OPTIONS):
        return None
    return copy.deepcopy(images)


def run_sources(config: dict, run: str) -> list[str]:
    """A run's sources with @GROUP expanded, in the order given (the dedup keep-order)."""
    out: list[str] = []
    for source in config["runs"][run]["sources"]:
        names = (
            [n for n, d in config["datasets"].items() if d["group"] == source[1:]]
            if source.startswith("@")
            else [source]
        )
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
    # how many images the dataset has ({"count": N or {split: N}, "source": ...}), from the
    # catalogue or the config; None where nothing is stated (the synthetic demo sets)
    images: dict[str, Any] | None = None

    @property
    def marker(self) -> Path:
        return self.root / ".verified"


DEFAULT_DATA_ROOT = config_schema.defaults("data")["root"]  # for specs read outside a validated config
_DATASET_DEFAULTS = config_schema.defaults("$defs.dataset")


def data_root(config: dict) -> Path:
    return Path((config.get("data") or {}).get("root") or DEFAULT_DATA_ROOT)


def weights_dir(config: dict) -> Path:
    """The pretrained-weights cache: data.weights, else <data.root>/weights."""
    return Path((config.get("data") or {}).get("weights") or data_root(config) / "weights")


def raw_root(config: dict, name: str) -> Path:
    """Where a dataset's files lie: its `root:`, else <data.root>/raw/<name>."""
    return Path(config["datasets"][name].get("root") or data_root(config) / "raw" / name)


def resolve_data_paths(config: dict) -> dict:
    """Fill in every dataset's root and the weights cache, so rules and scripts get paths."""
    config.setdefault("data", {})["weights"] = str(weights_dir(config))
    for name, spec in (config.get("datasets") or {}).items():
        spec["root"] = str(raw_root(config, name))
    return config


def dataset_spec(name: str, spec: dict) -> DatasetSpec:
    root = Path(spec.get("root") or Path(DEFAULT_DATA_ROOT) / "raw" / name)
    strict = bool(spec.get("strict", _DATASET_DEFAULTS["strict"]))
    return DatasetSpec(
        name,
        spec["group"],
        spec["format"],
        root,
        spec.get("options") or {},
        spec.get("synthetic"),
        strict,
        spec.get("images"),
    )


def dataset_specs(config: dict) -> dict[str, DatasetSpec]:
    return {name: dataset_spec(name, spec) for name, spec in config["datasets"].items()}


def load(path: str | Path, schema_path: str | Path) -> dict:
    """Read a YAML config file, validate it and resolve its catalogue datasets (for scripts
    and tests; Snakemake has its own loader). The workflow directory is the one holding
    `workflow/schemas/`."""
    config = validate(yaml.safe_load(Path(path).read_text()) or {}, schema_path)
    resolve_catalogue(config, Path(schema_path).resolve().parents[2])
    return resolve_data_paths(config)


def copy_sources(datasets: dict, name: str) -> list[dict]:
    """[{"name", "synthetic", "indices"}] of the datasets whose images `name` copies; a copy of a
    dataset that is not configured or not synthetic is an error naming both."""
    out = []
    for entry in datasets[name].get("synthetic", {}).get("copies", []):
        other = datasets.get(entry["dataset"])
        if other is None or other.get("synthetic") is None:
            raise ValueError(
                f"{name}: copies images of {entry['dataset']!r}, which is not a configured synthetic dataset"
            )
        out.append({"name": entry["dataset"], "synthetic": other["synthetic"], "indices": list(entry["indices"])})
    return out
