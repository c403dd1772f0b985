"""Licence terms of a run's sources: what each source's release states (the catalogue's
`licence` text) and two terms that decide what may be done with a model trained on it
(`terms: {commercial, derivatives}`: true, false or unknown; absent is unknown, the datasets
schema's default).

The run's shard manifest, the report and the exported model's metadata list every source with
its licence and terms; a run with a source whose commercial use or derivatives are not known to
be allowed (false or unknown) says so in one note, "non-commercial sources: ...", and in a
warning in the logs of the stages that write those files. The note is a flag for a person to
read the licences, not legal advice: unknown is flagged as restricted, never assumed free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import schema

DATASETS_SCHEMA = schema.SCHEMA.parent / "datasets.schema.yaml"
TERMS = ("commercial", "derivatives")

# a synthetic source is rendered by this workflow from nothing but its seed: no third party's terms
SYNTHETIC: dict[str, Any] = {
    "licence": "synthetic: rendered by this workflow (remoteclip.synthetic), no third-party images or text",
    "terms": {"commercial": True, "derivatives": True},
}
NOT_CATALOGUED = "not stated: read from its root without a catalogue entry"


def default_terms() -> dict[str, Any]:
    """Terms a catalogue entry does not state: the datasets schema's defaults (unknown)."""
    return schema.defaults("$defs.entry.terms", DATASETS_SCHEMA)


def source_licence(spec: Mapping[str, Any], entry: Mapping[str, Any] | None) -> dict[str, Any]:
    """{"licence", "terms"} of one configured dataset: its catalogue entry's, the synthetic
    demo's own, or not stated for data found under a root."""
    if entry is not None:
        return {"licence": entry["licence"], "terms": {**default_terms(), **(entry.get("terms") or {})}}
    if spec.get("synthetic") is not None:
        return {"licence": SYNTHETIC["licence"], "terms": dict(SYNTHETIC["terms"])}
    return {"licence": NOT_CATALOGUED, "terms": default_terms()}


def source_licences(
    datasets: Mapping[str, Mapping[str, Any]], catalogue: Mapping[str, Mapping[str, Any]], names: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """{dataset: {"licence", "terms"}} for `names`; `catalogue`: {dataset: its catalogue entry}
    as remoteclip.config.resolve_catalogue returns it."""
    return {name: source_licence(datasets[name], catalogue.get(name)) for name in names}


def restricted(licences: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The sources whose commercial use or derivatives are not known to be allowed."""
    return {name: lic["terms"] for name, lic in licences.items() if any(lic["terms"][t] is not True for t in TERMS)}


def note(licences: Mapping[str, Mapping[str, Any]]) -> str | None:
    """ "non-commercial sources: A (commercial: false, derivatives: unknown), ...", or None when
    every source allows both."""
    flagged = restricted(licences)
    if not flagged:
        return None
    return "non-commercial sources: " + ", ".join(f"{name} ({terms_text(terms)})" for name, terms in flagged.items())


def terms_text(terms: Mapping[str, Any]) -> str:
    """ "commercial: false, derivatives: unknown", as the catalogue writes them."""
    return ", ".join(f"{t}: {_word(terms[t])}" for t in TERMS)


def _word(value: Any) -> str:
    return {True: "true", False: "false"}.get(value, str(value))


def training_sources(manifest: Mapping[str, Any] | None, mixing: Mapping[str, Mapping] | None) -> dict[str, Any]:
    """What an exported model's metadata says of its training data: per source its kept samples,
    weight and expected share of an epoch (remoteclip.train.mixing) with its licence and terms
    (from the run's shard manifest), and the manifest's note."""
    manifest = manifest or {}
    listed = manifest.get("sources") or {}
    names = list(dict.fromkeys([*listed, *(mixing or {})]))
    sources = {
        name: {**(mixing or {}).get(name, {}), **{k: v for k, v in listed.get(name, {}).items() if k != "samples"}}
        for name in names
    }
    return {"run": manifest.get("run"), "sources": sources, "licence_note": manifest.get("licence_note")}
