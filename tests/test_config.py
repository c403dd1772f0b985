"""The config schema rejects misspelled keys and wrong types with the key's path."""

import pytest
import yaml

from conftest import REPO, SCHEMA
from remoteclip.config import ConfigError, load, validate
from workflow_helpers import snakemake, write_config


def test_demo_and_defaults():
    config = load(REPO / "config" / "config.yaml", SCHEMA)
    assert config["b2c"]["max_number"] == 10
    assert config["datasets"]["demo_dota"]["strict"] is False
    assert config["synthetic"]["workers"] == 1


def test_misspelled_key_is_named_with_a_suggestion():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["b2c"]["max_numbr"] = config["b2c"].pop("max_number")
    config["datasets"]["demo_dota"]["formt"] = "dota"
    with pytest.raises(ConfigError) as err:
        validate(config, SCHEMA)
    text = str(err.value)
    assert "b2c.max_numbr: unknown key (did you mean 'max_number'?)" in text
    assert "datasets.demo_dota.formt: unknown key (did you mean 'format'?)" in text


def test_wrong_type_and_bad_enum_are_named():
    config = {"seed": "zero", "datasets": {"x": {"group": "DETECTION", "format": "dota", "options": {"splitz": []}}}}
    with pytest.raises(ConfigError) as err:
        validate(config, SCHEMA)
    text = str(err.value)
    assert "seed: 'zero' is not of type 'integer'" in text
    assert "datasets.x.group: 'DETECTION' is not one of" in text
    assert "datasets.x.options.splitz: unknown option for format 'dota' (did you mean 'splits'?)" in text


def test_snakemake_reports_config_errors_readably(tmp_path):
    path = write_config(tmp_path, {"datasets": {"a": {"group": "DET", "format": "dota", "synthetic": {"writer": "dota",
                                                                                                          "images": "ten"}}}})
    proc = snakemake(tmp_path, path, "-n", check=False)
    assert proc.returncode != 0
    assert "datasets.a.synthetic.images: 'ten' is not of type 'integer'" in proc.stdout + proc.stderr
