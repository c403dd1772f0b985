"""Every parser is reachable by name from the config: registered, with options, in the schema enum."""

from pathlib import Path

import yaml

from remoteclip.formats import PARSER_OPTIONS, PARSERS, get_parser

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
NEW_FORMATS = {"visdrone", "auair", "carpk", "sdd", "levir", "hrsc"}


def schema_formats() -> set[str]:
    schema = yaml.safe_load(SCHEMA.read_text())
    return set(schema["$defs"]["dataset"]["properties"]["format"]["enum"])


def test_every_parser_has_options_and_a_schema_name():
    assert NEW_FORMATS <= set(PARSERS)
    assert set(PARSERS) <= set(PARSER_OPTIONS)
    assert set(PARSER_OPTIONS) == schema_formats()


def test_new_parsers_are_found_by_name():
    for name in NEW_FORMATS:
        assert get_parser(name) is PARSERS[name]
        assert isinstance(PARSER_OPTIONS[name], dict) and PARSER_OPTIONS[name]
