from remoteclip.vocabulary import canonical, count_phrase, normalise, plural, with_article


def test_normalise_folds_case_separators_and_bom():
    assert normalise("\ufeffSmall-Vehicle ") == "small vehicle"
    assert normalise("Expressway-Service-area") == "expressway service area"
    assert normalise("storage_tank") == "storage tank"
    assert normalise("T  junction") == "t junction"


def test_canonical_maps_dataset_spellings_to_one_name():
    assert canonical("small-vehicle") == "small vehicle"
    assert canonical("airplane") == canonical("plane") == canonical("aircraft") == "plane"
    assert canonical("storagetank") == canonical("oiltank") == canonical("Storage_Tank") == "storage tank"
    assert canonical("Expressway-toll-station") == "expressway toll station"
    assert canonical("groundtrackfield") == "ground track field"


def test_dataset_aliases_win_over_family_and_global_tables():
    assert canonical("water", family="loveda") == "water body"
    assert canonical("water") == "water"
    assert canonical("water", {"Water": "lake"}, family="loveda") == "lake"


def test_plurals():
    cases = {
        "bus": "buses",
        "storage tank": "storage tanks",
        "vehicle": "vehicles",
        "person": "people",
        "ferry": "ferries",
        "ground track field": "ground track fields",
        "box": "boxes",
        "church": "churches",
        "small vehicle": "small vehicles",
        "low vegetation": "patches of low vegetation",
        "day": "days",
    }
    for noun, expected in cases.items():
        assert plural(noun) == expected


def test_articles():
    assert with_article("ship") == "a ship"
    assert with_article("airplane") == "an airplane"
    assert with_article("oil tank") == "an oil tank"
    assert with_article("hour") == "an hour"
    assert with_article("unit") == "a unit"


def test_count_phrase():
    assert count_phrase(1, "bus") == "a bus"
    assert count_phrase(3, "bus") == "3 buses"
    assert count_phrase(3, "bus", ["zero", "one", "two", "three"]) == "three buses"
    assert count_phrase(1, "low vegetation") == "a patch of low vegetation"
