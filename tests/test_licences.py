"""Licence terms of a run's sources (catalogue field `terms`, remoteclip.licences): read from a
test catalogue for a config that mixes the demo's synthetic sources with catalogue ones; a
malformed term is named; a run with restricted or unknown terms gets the note."""

from __future__ import annotations

import pytest
import yaml

from conftest import REPO, SCHEMA
from remoteclip.config import ConfigError, load_catalogue, resolve_catalogue, run_sources, validate
from remoteclip.licences import note, source_licences

CATALOGUE = REPO / "config" / "datasets.yaml"
CATALOGUE_SCHEMA = REPO / "workflow" / "schemas" / "datasets.schema.yaml"


def catalogue_with(tmp_path, terms: dict) -> str:
    """config/datasets.yaml with `terms` set on its entries ({entry: terms})."""
    doc = yaml.safe_load(CATALOGUE.read_text())
    for name, value in terms.items():
        doc["datasets"][name]["terms"] = value
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def mixed_config(tmp_path, terms: dict) -> tuple[dict, dict]:
    """The demo config with two catalogue sources added to its all-sources run."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["catalogue"] = catalogue_with(tmp_path, terms)
    config["datasets"]["RSICD"] = {"catalogue": "RSICD"}
    config["datasets"]["DOTA"] = {"catalogue": "DOTA"}
    validate(config, SCHEMA)
    entries = resolve_catalogue(config, REPO)
    return config, entries


def test_a_run_lists_each_source_with_its_catalogue_terms_and_flags_restricted_and_unknown_ones(tmp_path):
    config, entries = mixed_config(tmp_path, {"RSICD": {"commercial": False, "derivatives": True}})
    sources = run_sources(config, "demo_all")
    assert {"RSICD", "DOTA", "demo_rsicd", "demo_dota"} <= set(sources)
    licences = source_licences(config["datasets"], entries, sources)
    assert licences["RSICD"]["terms"] == {"commercial": False, "derivatives": True}
    assert licences["RSICD"]["licence"] == entries["RSICD"]["licence"]  # the catalogue's own words
    assert licences["DOTA"]["terms"] == {"commercial": "unknown", "derivatives": "unknown"}  # not stated
    assert licences["demo_rsicd"]["terms"] == {"commercial": True, "derivatives": True}  # rendered here
    assert note(licences) == (
        "non-commercial sources: RSICD (commercial: false, derivatives: true), "
        "DOTA (commercial: unknown, derivatives: unknown)"
    )
    demo_only = source_licences(config["datasets"], entries, run_sources(config, "demo_ret"))
    assert set(demo_only) == {"demo_rsicd", "RSICD"} and "RSICD" in note(demo_only)


def test_the_demo_alone_is_not_flagged():
    config = validate(yaml.safe_load((REPO / "config" / "config.yaml").read_text()), SCHEMA)
    assert note(source_licences(config["datasets"], {}, run_sources(config, "demo_all"))) is None


@pytest.mark.parametrize(
    "terms, message",
    [
        ({"commercial": "maybe"}, "RSICD.terms.commercial: 'maybe' is not one of [True, False, 'unknown']"),
        ({"comercial": False}, "RSICD.terms.comercial: unknown key (did you mean 'commercial'?)"),
    ],
)
def test_a_malformed_term_names_the_entry_and_key(tmp_path, terms, message):
    path = catalogue_with(tmp_path, {"RSICD": terms})
    with pytest.raises(ConfigError) as err:
        load_catalogue(path, CATALOGUE_SCHEMA)
    assert path in str(err.value) and message in str(err.value)
