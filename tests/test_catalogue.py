"""The dataset catalogue (config/datasets.yaml): it validates, covers every dataset the paper
uses, and every entry is readable by its parser; workflow configs take group, format and
options from it; the download rules fetch catalogue datasets from a local HTTP server,
stop with the engine's message for manual ones, and check local data."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SCHEMA
from httpserver import FixtureServer
from remoteclip.config import (
    COMMON_OPTIONS,
    GROUPS_OWN_CAPTIONS,
    ConfigError,
    load_catalogue,
    resolve_catalogue,
    resolve_path,
    validate,
)
from remoteclip.download import ManualDownloadRequired, fetch_dataset, parse_gdrive_url, parse_hf_url
from remoteclip.formats import CAPTION_PARSERS, PARSER_OPTIONS
from workflow_helpers import job_counts, snakemake, write_config

CATALOGUE = REPO / "config" / "datasets.yaml"
CATALOGUE_SCHEMA = REPO / "workflow" / "schemas" / "datasets.schema.yaml"

RET3 = {"RSICD", "RSITMD", "UCM-Captions"}
DET10 = {"DOTA", "DIOR", "HRRSD", "RSOD", "LEVIR", "HRSC2016", "VisDrone", "AU-AIR", "Stanford-Drone", "CARPK"}
SEG4 = {"iSAID", "LoveDA", "Potsdam", "Vaihingen"}
CLS12 = {
    "AID",
    "EuroSAT",
    "MLRSNet",
    "RESISC45",
    "Optimal-31",
    "PatternNet",
    "RSC11",
    "RSSCN7",
    "RSI-CB128",
    "RSI-CB256",
    "SIRI-WHU",
    "WHU-RS19",
}


@pytest.fixture(scope="module")
def catalogue() -> dict[str, dict]:
    return load_catalogue(CATALOGUE, CATALOGUE_SCHEMA)


def catalogue_doc() -> dict:
    return yaml.safe_load(CATALOGUE.read_text())


def write_catalogue(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# ---- the catalogue itself ---------------------------------------------------------------------


def test_covers_every_dataset_of_the_paper(catalogue):
    groups = {name: entry["group"] for name, entry in catalogue.items()}
    assert all(groups[n] == "RET" for n in RET3)
    assert all(groups[n] == "DET" for n in DET10)
    assert all(groups[n] == "SEG" for n in SEG4)
    assert all(groups[n] == "CLS" for n in CLS12 | {"UCMerced"})
    count = catalogue["RemoteCount-DOTA-val"]
    assert (count["group"], count["format"], count["options"]["splits"]) == ("COUNT", "dota", ["val"])
    hf = catalogue["RemoteCLIP-HF"]
    assert (hf["group"], hf["format"]) == ("RET", "hf_tsv")
    assert all("gzqy1026/RemoteCLIP@" in u for f in hf["files"] for u in f["urls"])


def test_every_format_is_registered_and_its_options_are_accepted(catalogue):
    for name, entry in catalogue.items():
        assert entry["format"] in PARSER_OPTIONS, name
        unknown = set(entry.get("options") or {}) - set(PARSER_OPTIONS[entry["format"]]) - COMMON_OPTIONS
        assert not unknown, f"{name}: {unknown}"
        assert (entry["group"] in GROUPS_OWN_CAPTIONS) == (entry["format"] in CAPTION_PARSERS), name
    # and the workflow's own loader accepts every entry as a configured dataset
    config = {"catalogue": str(CATALOGUE), "datasets": {n: {"catalogue": n} for n in catalogue}}
    validate(config, SCHEMA)
    assert set(resolve_catalogue(config, REPO)) == set(catalogue)


def test_sources_are_well_formed(catalogue):
    for name, entry in catalogue.items():
        assert entry.get("files") or (entry.get("manual") or {}).get("files"), name
        assert entry["licence"].strip() and entry["homepage"].startswith("http"), name
        # nothing could be checked against a real file where this catalogue was written
        assert "checked" not in entry["verified"].values(), name
        for f in entry.get("files") or []:
            for url in f["urls"]:
                if url.startswith("hf://"):
                    assert parse_hf_url(url).revision, f"{name}: {url} is not pinned to a commit"
                elif url.startswith("gdrive://"):
                    parse_gdrive_url(url)
        if entry["group"] == "CLS":
            assert entry["classes"] and entry["split"]["rule"] in ("filename_80_20", "official"), name
    # published checksums are carried over exactly (datasets.md)
    md5 = {f["name"]: f.get("md5") for e in catalogue.values() for f in e.get("files") or []}
    assert md5["dotav1.0_images_train.tar.gz"] == "363b472dc3c71e7fa2f4a60223b437ea"
    assert md5["dotav1.0_annotations_val.tar.gz"] == "28155c05b1dc3a0f5cb6b9bdfef85a13"
    assert md5["Train.zip"] == "de2b196043ed9b4af1690b3f9a7d558f"
    assert md5["NWPU-RESISC45.zip"] == "75206b2e16446591afa88e2628744886"
    assert md5["VisDrone2019-DET-train.zip"] is None  # none published: trusted on first use
    assert catalogue["RSSCN7"]["classes"]["aGrass"] == "grass"
    assert catalogue["AID"]["classes"]["DenseResidential"] == "dense residential"


WEB5 = {"RS5M", "SkyScript", "Git-10M", "RSTeller", "GAIA"}


def test_the_web_corpora_are_training_sources_with_their_terms_and_release_shapes(catalogue):
    web = {name for name, entry in catalogue.items() if entry["group"] == "WEB"}
    assert web == WEB5
    shapes = {name: catalogue[name]["format"] for name in web}
    assert shapes == {
        "RS5M": "webdataset",
        "RSTeller": "webdataset",
        "GAIA": "webdataset",
        "SkyScript": "caption_table",
        "Git-10M": "parquet",
    }
    # as each corpus states its licence: Git-10M is CC-BY-NC-ND, RS5M's stricter card CC-BY-NC
    assert catalogue["Git-10M"]["terms"] == {"commercial": False, "derivatives": False}
    assert catalogue["RS5M"]["terms"]["commercial"] is False
    assert catalogue["SkyScript"]["terms"] == {"commercial": "unknown", "derivatives": "unknown"}
    for name in web:
        assert catalogue[name]["options"]["captions"], name  # which caption fields are read is explicit


def test_numbered_files_expand_to_each_release_shard(catalogue):
    from remoteclip.download.specs import file_specs

    names = {name: [s.name for s in file_specs(name, catalogue[name])] for name in WEB5}
    assert len(names["RSTeller"]) == 240 and names["RSTeller"][-1] == "train-000239.tar"
    assert len(names["RS5M"]) == 64 and {"pub11-train-0031.tar", "rs3-train-0000.tar"} <= set(names["RS5M"])
    assert [n for n in names["SkyScript"] if n.endswith(".zip")] == [f"images{i}.zip" for i in range(2, 8)]
    # tars are read in place by the webdataset format: never unpacked on download
    for name in ("RS5M", "RSTeller"):
        assert not any(s.extract for s in file_specs(name, catalogue[name])), name


def test_image_counts_are_quoted_from_the_reference(catalogue):
    stated = {name: entry["images"] for name, entry in catalogue.items() if "images" in entry}
    # every pretraining source whose image count the reference gives (LEVIR's two counts
    # disagree six-fold; Stanford Drone's frames are sampled)
    assert set(stated) == (RET3 | DET10 | SEG4 | {"DIOR-torchgeo", "RemoteCLIP-HF", "RemoteCLIP-HF-RET3"}) - {
        "LEVIR",
        "Stanford-Drone",
    }
    for name, images in stated.items():
        assert images["source"].startswith("datasets.md "), name
        tags = catalogue[name]["verified"]
        assert {"image_counts", "split_counts", "counts"} & set(tags), f"{name}: no tag says how sure the count is"
        # a per-split count names the splits as the entry's parser reads them
        if isinstance(images["count"], dict):
            assert set(
                catalogue[name]["options"].get("splits") or PARSER_OPTIONS[catalogue[name]["format"]]["splits"]
            ) <= set(images["count"]), name
    assert stated["DOTA"]["count"] == {"train": 1411, "val": 458, "test": 937}
    assert stated["iSAID"]["count"] == {"train": 1411, "val": 458, "test": 937}
    assert stated["DIOR"]["count"] == 23463 and stated["HRRSD"]["count"] == 21761 and stated["RSOD"]["count"] == 976
    assert stated["VisDrone"]["count"]["train"] == 6471 and stated["AU-AIR"]["count"] == 32823
    assert stated["RSICD"]["count"]["train"] == 8734 and stated["RSITMD"]["count"] == {"train": 4291, "test": 452}
    assert stated["Potsdam"]["count"] == 38 and stated["Vaihingen"]["count"] == 33
    assert stated["RemoteCLIP-HF"]["count"] == {"train": 165745}


def test_manual_entries_say_what_to_fetch_from_where_and_where_to_put_it(catalogue, tmp_path):
    manual_only = [n for n, e in catalogue.items() if not e.get("files")]
    assert {"DIOR", "RSOD", "LEVIR", "HRSC2016", "CARPK", "Potsdam", "Vaihingen"} <= set(manual_only)
    for name in manual_only:
        root = tmp_path / name
        with pytest.raises(ManualDownloadRequired) as err:
            fetch_dataset(name, catalogue[name], root, tmp_path / "lock.yaml", progress=False)
        for f in catalogue[name]["manual"]["files"]:
            assert f["name"] in str(err.value) and f["from"] in str(err.value)
            assert str((root / ".archives" / f["name"]).absolute()) in str(err.value)


def test_lock_file_is_empty_and_committable():
    doc = yaml.safe_load((REPO / "config" / "datasets.lock.yaml").read_text())
    assert doc == {"datasets": {}}
    assert (REPO / "config" / "datasets.lock.yaml").read_text().startswith("#")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["datasets"]["DOTA"].update(formt="dota"), "DOTA.formt: unknown key (did you mean 'format'?)"),
        (lambda d: d["datasets"]["LoveDA"].pop("format"), "LoveDA: 'format' is a required property"),
        (
            lambda d: d["datasets"]["AID"].update(format="class_folder"),
            "AID.format: 'class_folder' is not a registered parser (did you mean 'class_folders'?)",
        ),
        (
            lambda d: d["datasets"]["DOTA"]["options"].update(splitz=["train"]),
            "DOTA.options.splitz: unknown option for format 'dota' (did you mean 'splits'?)",
        ),
        (lambda d: d["datasets"]["RSICD"].update(format="dota"), "RSICD.format: group RET needs a caption format"),
        (lambda d: d["datasets"]["DOTA"].pop("files"), "DOTA: lists no files"),
        (lambda d: d["datasets"]["DOTA"]["files"][0].update(md5="xyz"), "DOTA.files.0.md5: 'xyz' does not match"),
        (lambda d: d["datasets"]["AID"].pop("classes"), "AID: 'classes' is a required property"),
        (
            lambda d: d["datasets"]["AID"]["verified"].update(classes="sure"),
            "AID.verified.classes: 'sure' is not one of",
        ),
        (lambda d: d["datasets"]["DOTA"]["images"].pop("source"), "DOTA.images: 'source' is a required property"),
    ],
)
def test_invalid_catalogue_errors_name_the_entry_and_key(tmp_path, change, message):
    doc = catalogue_doc()
    change(doc)
    path = write_catalogue(tmp_path / "datasets.yaml", doc)
    with pytest.raises(ConfigError) as err:
        load_catalogue(path, CATALOGUE_SCHEMA)
    assert str(path) in str(err.value) and message in str(err.value)


# ---- workflow configs naming catalogue entries ----------------------------------------------------


def resolved(datasets: dict, **top) -> dict:
    config = validate({"datasets": datasets, **top}, SCHEMA)
    resolve_catalogue(config, REPO)
    return config


def test_config_takes_group_format_and_options_from_the_catalogue():
    config = resolved(
        {
            "DOTA": {"catalogue": "DOTA"},
            "LoveDA": {"catalogue": "LoveDA", "options": {"tile": 512}},  # merged key by key
            "count": {"catalogue": "RemoteCount-DOTA-val", "options": {"splits": ["val", "train"]}},
            "dota_as_count": {"catalogue": "DOTA", "group": "COUNT"},  # config wins
        }
    )
    d = config["datasets"]
    assert (d["DOTA"]["group"], d["DOTA"]["format"]) == ("DET", "dota")
    assert d["DOTA"]["options"]["labels"] == "{split}/annotations/version1.0/*.txt"
    assert d["LoveDA"]["options"] == {"splits": ["train", "val"], "vocabulary": "loveda", "tile": 512}
    assert d["count"]["options"]["splits"] == ["val", "train"] and d["count"]["group"] == "COUNT"
    assert d["dota_as_count"]["group"] == "COUNT"
    from remoteclip.config import dataset_specs

    specs = dataset_specs(config)
    assert specs["DOTA"].root == Path("data/raw/DOTA") and specs["DOTA"].format == "dota"


def test_config_without_catalogue_datasets_needs_no_catalogue_file():
    config = validate(
        {
            "catalogue": "/nonexistent/datasets.yaml",
            "datasets": {"x": {"group": "DET", "format": "dota", "synthetic": {"writer": "dota", "images": 2}}},
        },
        SCHEMA,
    )
    assert resolve_catalogue(config, REPO) == {}
    assert {k: config["download"][k] for k in ("lock", "retries", "timeout", "unpack")} == {
        "lock": "config/datasets.lock.yaml",
        "retries": 5,
        "timeout": 60,
        "unpack": "job",
    }


@pytest.mark.parametrize(
    "datasets, message",
    [
        ({"d": {"catalogue": "DOTTA"}}, "datasets.d.catalogue: 'DOTTA' is not an entry of"),
        (
            {"d": {"catalogue": "DOTA", "options": {"splitz": []}}},
            "datasets.d.options.splitz: unknown option for format 'dota' (did you mean 'splits'?)",
        ),
        ({"d": {"catalogue": "RSICD", "format": "dota"}}, "datasets.d.format: group RET needs a caption format"),
        (
            {"d": {"catalogue": "DOTA", "synthetic": {"writer": "dota", "images": 2}}},
            "datasets.d: give either 'synthetic' (render it) or 'catalogue' (download it), not both",
        ),
    ],
)
def test_config_errors_after_resolution_are_named(datasets, message):
    with pytest.raises(ConfigError, match="did you mean 'DOTA'" if "DOTTA" in str(datasets) else None) as err:
        resolved(datasets)
    assert message in str(err.value)


def test_group_and_format_are_required_without_catalogue():
    with pytest.raises(ConfigError) as err:
        validate({"datasets": {"d": {"root": "/data/d"}}}, SCHEMA)
    assert "datasets.d: 'group' is a required property" in str(err.value)
    assert "datasets.d: 'format' is a required property" in str(err.value)


def test_runs_may_name_catalogue_datasets_of_training_groups():
    resolved({"DOTA": {"catalogue": "DOTA"}}, runs={"r": {"sources": ["DOTA", "@RET"]}})
    with pytest.raises(ConfigError, match="runs.r.sources.0: 'AID' is a CLS benchmark"):
        resolved({"AID": {"catalogue": "AID"}}, runs={"r": {"sources": ["AID"]}})


def test_relative_paths_fall_back_to_the_workflow_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_path("config/datasets.yaml", REPO) == REPO / "config" / "datasets.yaml"
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "datasets.yaml").write_text("datasets: {}\n")
    assert resolve_path("config/datasets.yaml", REPO) == Path("config/datasets.yaml")
    assert resolve_path("config/new.lock.yaml", REPO) == Path("config/new.lock.yaml")


# ---- through Snakemake, against a local HTTP server ---------------------------------------------------


def targz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in sorted(files.items()):
            zf.writestr(name, data)
    return buf.getvalue()


def png(size=(64, 48)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (90, 120, 60)).save(buf, format="PNG")
    return buf.getvalue()


# torchgeo's DOTA layout: {split}/images/ and {split}/annotations/version1.0/
DOTA_IMAGES = targz({"train/images/P0000.png": png(), "train/images/P0001.png": png()})
DOTA_LABELS = targz(
    {
        "train/annotations/version1.0/P0000.txt": b"imagesource:GoogleEarth\ngsd:0.146\n10 10 30 10 30 20 10 20 plane 0\n40 30 50 30 50 40 40 40 ship 1\n",
        "train/annotations/version1.0/P0001.txt": b"5 5 15 5 15 15 5 15 small-vehicle 0\n",
    }
)
# the HF release: tab-separated tables with a BOM, images zipped
HF_TABLE = (
    "\ufefftitle\tfilename\n"
    + "".join(f"a plane number {i} .\trsicd_airport_1.png\n" for i in range(5))
    + "".join(f"a farm {i} .\tucm_7.png\n" for i in range(5))
).encode()
HF_IMAGES = zipped({"Ret-3_train/rsicd_airport_1.png": png((16, 16)), "Ret-3_train/ucm_7.png": png((16, 16))})


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def served_catalogue(server: FixtureServer, path: Path) -> Path:
    """The real catalogue with DOTA and RemoteCLIP-HF-RET3 served from 127.0.0.1."""
    doc = catalogue_doc()
    dota = doc["datasets"]["DOTA"]
    # two served images stand in for each set: the real sets' image counts do not apply
    for name in ("DOTA", "RemoteCLIP-HF-RET3"):
        del doc["datasets"][name]["images"]
    dota["files"] = [
        {
            "name": "dotav1.0_images_train.tar.gz",
            "urls": [server.add("dota/images.tar.gz", DOTA_IMAGES)],
            "md5": md5(DOTA_IMAGES),
        },
        # no checksum: trusted on first use, recorded in the lock file
        {"name": "dotav1.0_annotations_train.tar.gz", "urls": [server.add("dota/labels.tar.gz", DOTA_LABELS)]},
    ]
    hf = doc["datasets"]["RemoteCLIP-HF-RET3"]
    hf["files"] = [
        {
            "name": "Ret-3_train.csv",
            "urls": [server.add("hf/Ret-3_train.csv", HF_TABLE)],
            "extract": False,
            "subdir": "csv_file/train",
        },
        {"name": "Ret-3_train.zip", "urls": [server.add("hf/Ret-3_train.zip", HF_IMAGES)], "subdir": "data"},
    ]
    doc["datasets"]["ManualSet"] = {
        **copy.deepcopy(dota),
        "title": "a dataset behind a request form",
        "files": [],
        "manual": {
            "instructions": "Fill in the request form; the link arrives by e-mail.",
            "files": [
                {
                    "name": "labels-by-request.tar.gz",
                    "from": "https://example.org/request-form",
                    "md5": md5(DOTA_LABELS),
                }
            ],
        },
    }
    del doc["datasets"]["ManualSet"]["files"]
    return write_catalogue(path, doc)


def workflow_config(workdir: Path, catalogue: Path, datasets: dict) -> Path:
    return write_config(
        workdir,
        {
            "catalogue": str(catalogue),
            "download": {"lock": str(workdir / "datasets.lock.yaml"), "retries": 1, "timeout": 10},
            "datasets": datasets,
            "b2c": {"templates": str(REPO / "config" / "b2c_templates.yaml")},
        },
    )


def test_download_then_parse_a_catalogue_dataset(tmp_path):
    with FixtureServer() as server:
        catalogue = served_catalogue(server, tmp_path / "datasets.yaml")
        config = workflow_config(
            tmp_path,
            catalogue,
            {
                "DOTA": {"catalogue": "DOTA"},
                "HF": {"catalogue": "RemoteCLIP-HF-RET3", "options": {"splits": ["train"]}},
            },
        )
        dry = snakemake(tmp_path, config, "-n")
        assert "download" in dry.stdout and "parse" in dry.stdout and "ret_captions" in dry.stdout
        assert server.log == []  # a dry run fetches nothing

        snakemake(tmp_path, config, "results/annotations/DOTA.json", "results/captions/HF.jsonl")

    raw = tmp_path / "data" / "raw" / "DOTA"
    marker = json.loads((raw / ".verified").read_text())
    assert [f["name"] for f in marker["files"]] == ["dotav1.0_images_train.tar.gz", "dotav1.0_annotations_train.tar.gz"]
    assert [f["verified_by"] for f in marker["files"]] == ["md5", "recorded on first use"]
    lock = yaml.safe_load((tmp_path / "datasets.lock.yaml").read_text())["datasets"]
    assert lock["DOTA"]["dotav1.0_annotations_train.tar.gz"]["sha256"] == hashlib.sha256(DOTA_LABELS).hexdigest()
    assert "dotav1.0_images_train.tar.gz" not in lock["DOTA"]  # its md5 is published

    coco = json.loads((tmp_path / "results" / "annotations" / "DOTA.json").read_text())
    assert sorted(i["file_name"] for i in coco["images"]) == ["train/images/P0000.png", "train/images/P0001.png"]
    assert len(coco["annotations"]) == 3
    rows = [json.loads(line) for line in (tmp_path / "results/captions/HF.jsonl").read_text().splitlines()]
    assert [(Path(r["image"]).name, len(r["captions"])) for r in rows] == [("rsicd_airport_1.png", 5), ("ucm_7.png", 5)]
    assert (tmp_path / "results/logs/download/DOTA.log").exists()


def test_fetching_needs_the_network_and_verifying_and_unpacking_do_not(tmp_path):
    """The login node's part (fetch_dataset) alone transfers the files; the job's part
    (download: verify and unpack) then runs with the server gone. Which rule is local on a
    cluster: tests/test_slurm_profile.py."""
    with FixtureServer() as server:
        catalogue = served_catalogue(server, tmp_path / "datasets.yaml")
        config = workflow_config(tmp_path, catalogue, {"DOTA": {"catalogue": "DOTA"}})
        snakemake(tmp_path, config, "data/archives/DOTA/.fetched")
        archives = tmp_path / "data" / "archives" / "DOTA"
        assert sorted(p.name for p in archives.iterdir()) == [
            ".fetched",
            "dotav1.0_annotations_train.tar.gz",
            "dotav1.0_annotations_train.tar.gz.fetched",
            "dotav1.0_images_train.tar.gz",
            "dotav1.0_images_train.tar.gz.fetched",
        ]
        assert not (tmp_path / "data" / "raw" / "DOTA").exists()  # nothing verified or unpacked yet
        assert not (tmp_path / "datasets.lock.yaml").exists()
    # the server is gone: the job verifies (recording the unpublished checksum) and unpacks offline
    snakemake(tmp_path, config, "data/raw/DOTA/.verified")
    assert (tmp_path / "data/raw/DOTA/train/images/P0000.png").is_file()
    assert "DOTA" in yaml.safe_load((tmp_path / "datasets.lock.yaml").read_text())["datasets"]


def test_each_archive_is_a_job_and_one_that_fails_is_redone_alone(tmp_path):
    """The last archive arrives corrupt: the first is verified and installed anyway (one job
    each), and once the server is fixed only the last one is fetched, verified and installed."""
    with FixtureServer() as server:
        catalogue = served_catalogue(server, tmp_path / "datasets.yaml")
        doc = yaml.safe_load(catalogue.read_text())
        doc["datasets"]["DOTA"]["files"][1]["md5"] = md5(DOTA_LABELS)
        catalogue.write_text(yaml.safe_dump(doc))
        server.add("dota/labels.tar.gz", DOTA_LABELS, mode="wrong", wrong=DOTA_LABELS[:-3] + b"bad")
        config = workflow_config(tmp_path, catalogue, {"DOTA": {"catalogue": "DOTA"}})
        target = "data/raw/DOTA/.verified"
        first = snakemake(tmp_path, config, "--keep-going", target, check=False)
        assert first.returncode != 0 and "dotav1.0_annotations_train.tar.gz" in first.stdout + first.stderr
        counts = job_counts(first.stdout + first.stderr)
        assert {r: counts.get(r) for r in ("fetch_archive", "verify_archive", "install_archive")} == {
            "fetch_archive": 2,
            "verify_archive": 2,
            "install_archive": 2,
        }
        raw = tmp_path / "data" / "raw" / "DOTA"
        assert sorted(p.name for p in (raw / ".extracted").iterdir()) == ["dotav1.0_images_train.tar.gz"]
        installed = (raw / "train" / "images" / "P0000.png").stat().st_mtime_ns

        server.add("dota/labels.tar.gz", DOTA_LABELS)  # the mirror is fixed
        second = snakemake(tmp_path, config, target)
    counts = job_counts(second.stdout + second.stderr)
    assert {r: counts.get(r) for r in ("fetch_archive", "verify_archive", "install_archive", "download")} == {
        "fetch_archive": 1,
        "verify_archive": 1,
        "install_archive": 1,
        "download": 1,
    }
    assert (raw / "train" / "images" / "P0000.png").stat().st_mtime_ns == installed
    assert (raw / "train" / "annotations" / "version1.0" / "P0001.txt").is_file()
    assert [f["name"] for f in json.loads((raw / ".verified").read_text())["files"]] == [
        "dotav1.0_images_train.tar.gz",
        "dotav1.0_annotations_train.tar.gz",
    ]


def test_a_fetched_file_that_fails_its_checksum_is_set_aside_and_fetched_again(tmp_path):
    from remoteclip.download import ChecksumError, fetch_archives, install_archives

    with FixtureServer() as server:
        catalogue = served_catalogue(server, tmp_path / "datasets.yaml")
        entry = yaml.safe_load(catalogue.read_text())["datasets"]["DOTA"]
        archives, root, lock = tmp_path / "archives", tmp_path / "raw", tmp_path / "lock.yaml"
        fetch_archives("DOTA", entry, archives, root, lock, progress=False, retries=1)
        images = archives / "dotav1.0_images_train.tar.gz"
        images.write_bytes(images.read_bytes()[:-10] + b"0123456789")  # a corrupt transfer
        with pytest.raises(ChecksumError, match="kept aside .*the next run downloads it again"):
            install_archives("DOTA", entry, archives, root, lock, progress=False)
        assert not images.exists() and images.with_name(images.name + ".bad").exists()
        assert not (archives / ".fetched").exists() and not (root / ".verified").exists()
        fetch_archives("DOTA", entry, archives, root, lock, progress=False, retries=1)
        install_archives("DOTA", entry, archives, root, lock, progress=False)
        assert (root / ".verified").is_file()


def test_manual_dataset_stops_with_what_to_fetch_then_proceeds(tmp_path):
    with FixtureServer() as server:
        catalogue = served_catalogue(server, tmp_path / "datasets.yaml")
    config = workflow_config(tmp_path, catalogue, {"M": {"catalogue": "ManualSet"}})
    target = "data/raw/M/.verified"
    proc = snakemake(tmp_path, config, target, check=False)
    out = proc.stdout + proc.stderr
    placed = tmp_path / "data" / "archives" / "M" / "labels-by-request.tar.gz"
    assert proc.returncode != 0
    assert "labels-by-request.tar.gz" in out and "https://example.org/request-form" in out
    assert "request form; the link arrives by e-mail" in out and str(placed) in out
    assert not (tmp_path / target).exists()

    placed.write_bytes(DOTA_LABELS)
    snakemake(tmp_path, config, target)
    assert json.loads((tmp_path / target).read_text())["files"][0]["verified_by"] == "md5"


def test_local_dataset_root_is_checked(tmp_path):
    root = tmp_path / "my-data" / "AID"
    config = workflow_config(tmp_path, CATALOGUE, {"L": {"group": "CLS", "format": "class_folders", "root": str(root)}})
    target = "data/raw/L/.verified"
    proc = snakemake(tmp_path, config, target, check=False)
    assert proc.returncode != 0
    assert f"dataset 'L': its root {root} does not exist" in proc.stdout + proc.stderr

    root.mkdir(parents=True)
    snakemake(tmp_path, config, target)
    assert json.loads((tmp_path / target).read_text()) == {"dataset": "L", "root": str(root), "local": True}


def test_snakemake_names_a_wrong_catalogue_entry(tmp_path):
    config = workflow_config(tmp_path, CATALOGUE, {"d": {"catalogue": "DOTTA"}})
    proc = snakemake(tmp_path, config, "-n", check=False)
    assert proc.returncode != 0
    assert "datasets.d.catalogue: 'DOTTA' is not an entry of" in proc.stdout + proc.stderr
