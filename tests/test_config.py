"""The config schema rejects misspelled keys and wrong types with the key's path, and is the
one place where defaults are written: the code's defaults are read from it."""

import json

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
    path = write_config(
        tmp_path,
        {"datasets": {"a": {"group": "DET", "format": "dota", "synthetic": {"writer": "dota", "images": "ten"}}}},
    )
    proc = snakemake(tmp_path, path, "-n", check=False)
    assert proc.returncode != 0
    assert "datasets.a.synthetic.images: 'ten' is not of type 'integer'" in proc.stdout + proc.stderr


# ---------------------------------------------------------------- defaults live in the schema


def test_schema_defaults_are_what_the_validator_fills_in():
    from remoteclip import schema

    config = validate({"runs": {"r": {"sources": ["@RET"]}}}, SCHEMA)
    assert schema.SCHEMA == SCHEMA
    assert config["runs"]["r"]["train"] == schema.defaults("$defs.train")
    assert config["runs"]["r"]["model"] == schema.defaults("$defs.model")
    for key in ("evaluation", "dedup", "shards", "b2c", "splits", "data"):
        assert config[key] == schema.defaults(key), key
    assert config["evaluation"]["knn"] == schema.defaults("evaluation.knn")


def test_code_defaults_are_the_schema_defaults():
    import dataclasses
    import inspect

    from remoteclip import schema
    from remoteclip.b2c import B2CSettings
    from remoteclip.evaluate import counting, features, fewshot, knn, probe, retrieval
    from remoteclip.shards import ShardSettings
    from remoteclip.train.data import Augment
    from remoteclip.train.settings import ModelSettings, TrainSettings

    def as_schema(values):  # the dataclasses hold tuples where the schema has lists
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    def keyword_defaults(fn, *names):
        params = inspect.signature(fn).parameters
        return {n: params[n].default for n in names}

    train, evaluation = schema.defaults("$defs.train"), schema.defaults("evaluation")
    assert as_schema(dataclasses.asdict(TrainSettings())) == train
    assert as_schema(dataclasses.asdict(ModelSettings())) == schema.defaults("$defs.model")
    augment = Augment()
    assert [list(augment.crop_scale), augment.hflip, augment.rot90] == [
        train["crop_scale"],
        train["hflip"],
        train["rot90"],
    ]
    b2c = as_schema(dataclasses.asdict(B2CSettings({})))
    assert b2c == {**schema.defaults("b2c"), "templates": {}}
    shards = dataclasses.asdict(ShardSettings())
    assert {k: shards[k] for k in schema.defaults("shards")} == schema.defaults("shards")
    for fn in (knn.knn_scores, knn.knn_predict, knn.knn_metrics):
        assert keyword_defaults(fn, "k", "temperature") == evaluation["knn"]
    assert as_schema(keyword_defaults(fewshot.fewshot, "shots", "seeds")) == evaluation["fewshot"]
    assert keyword_defaults(probe.linear_probe, "protocol", "seed") == evaluation["linear_probe"]
    assert keyword_defaults(retrieval.retrieval_metrics, "tie_order") == evaluation["retrieval"]
    counted = keyword_defaults(counting.build_counting_set, "min_count", "max_count", "tile", "square")
    assert counted == {k: evaluation["counting"][k] for k in counted}
    for fn in (features.image_features, features.embed):
        assert keyword_defaults(fn, "batch_size", "workers") == {k: evaluation[k] for k in ("batch_size", "workers")}


def _with_schema(tmp_path, edit, code: str) -> str:
    """Run `code` in a fresh interpreter whose remoteclip reads a copy of the schema changed by
    `edit` (a function of the schema dict); returns what the code printed."""
    import os
    import subprocess
    import sys

    changed = yaml.safe_load(SCHEMA.read_text())
    edit(changed)
    path = tmp_path / "config.schema.yaml"
    path.write_text(yaml.safe_dump(changed, sort_keys=False))
    prelude = f"import remoteclip.schema, pathlib; remoteclip.schema.SCHEMA = pathlib.Path({str(path)!r})\n"
    proc = subprocess.run(
        [sys.executable, "-c", prelude + code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()


def test_a_training_default_changed_in_the_schema_changes_the_crops(tmp_path):
    """train.crop_scale: the validated run, its settings and the augmentation all follow the schema."""

    def small_crops(schema):
        schema["$defs"]["train"]["properties"]["crop_scale"]["default"] = [0.25, 0.25]

    code = """
import json, random
from remoteclip.config import validate
from remoteclip.train.data import Augment
from remoteclip.train.settings import from_config
run = validate({"runs": {"r": {"sources": ["@RET"]}}})["runs"]["r"]
_, train = from_config(run["model"], run["train"])
_, defaults = from_config({}, {})
top, left, h, w = Augment(64, train.crop_scale).crop_box(random.Random(0), 100, 100)
print(json.dumps({"validated": run["train"]["crop_scale"], "settings": train.crop_scale,
                  "settings_default": defaults.crop_scale, "augment_default": Augment().crop_scale, "area": h * w}))
"""
    got = json.loads(_with_schema(tmp_path, small_crops, code))
    area = got.pop("area")
    assert got == dict.fromkeys(("validated", "settings", "settings_default", "augment_default"), [0.25, 0.25])
    assert 2000 <= area <= 3000  # a quarter of the 100 x 100 image, not the default's >= 90 %


def test_an_evaluation_default_changed_in_the_schema_changes_the_knn_vote(tmp_path):
    """evaluation.knn.k: the validated config, the k-NN task and knn_predict's default follow the schema."""

    def one_neighbour(schema):
        schema["properties"]["evaluation"]["properties"]["knn"]["properties"]["k"]["default"] = 1

    # one training image of class 0 right at the test image, twenty of class 1 a little further:
    # the nearest neighbour says 0, twenty neighbours (the schema's default k) say 1
    code = """
import numpy as np
from remoteclip.config import validate
from remoteclip.evaluate import tasks
from remoteclip.evaluate.knn import knn_predict
test = np.array([[1.0, 0.0]])
train = np.vstack([[1.0, 0.0], np.tile([0.9, 0.1], (20, 1))])
labels = np.array([0] + [1] * 20)
settings = validate({})["evaluation"]
images = {"features": np.vstack([train, test]), "labels": np.append(labels, 0),
          "is_test": np.array([False] * 21 + [True])}
metrics, protocol = tasks.knn({"rule": "test", "classes": ["a", "b"]}, images, None, settings)
print(settings["knn"]["k"], protocol["k"], metrics["acc1"], knn_predict(train, labels, test, 2)[0])
"""
    assert _with_schema(tmp_path, lambda s: None, code) == "20 20 0.0 1"  # the schema as it is
    assert _with_schema(tmp_path, one_neighbour, code) == "1 1 100.0 0"
