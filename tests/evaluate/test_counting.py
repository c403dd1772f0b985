from collections import Counter

import numpy as np
import pytest

from remoteclip.evaluate.counting import COUNT_CLASSES, build_counting_set, count_captions, counting_metrics
from remoteclip.formats.base import Box, ImageRecord
from remoteclip.vocabulary import canonical

DOTA_NAMES = [
    "plane",
    "helicopter",
    "roundabout",
    "bridge",
    "baseball-diamond",
    "ground-track-field",
    "basketball-court",
    "tennis-court",
    "harbor",
    "soccer-ball-field",
    "swimming-pool",
    "ship",
    "storage-tank",
]


def test_count_classes_are_the_papers_13_in_canonical_names():
    assert len(COUNT_CLASSES) == 13
    assert [canonical(name) for name in DOTA_NAMES] == list(COUNT_CLASSES)
    assert "soccer field" in COUNT_CLASSES


def test_count_captions_words_and_digits():
    words = count_captions("plane")
    assert len(words) == 10
    assert words[0] == "There is one plane in the image."
    assert words[1] == "There are two planes in the image."
    assert words[9] == "There are ten planes in the image."
    digits = count_captions("storage tank", variant="digits")
    assert digits[0] == "There is 1 storage tank in the image."
    assert digits[9] == "There are 10 storage tanks in the image."
    assert count_captions("ground track field")[2] == "There are three ground track fields in the image."
    with pytest.raises(ValueError, match="variant"):
        count_captions("ship", variant="roman")


def box(x, y, category, w=10, h=10):
    return Box(x, y, w, h, category)


def test_whole_image_samples_with_counts_in_range():
    boxes = [box(10 * i, 0, "ship") for i in range(3)] + [box(0, 50 + i, "plane") for i in range(11)]
    boxes.append(box(50, 50, "small vehicle"))
    skips = Counter()
    samples = build_counting_set([ImageRecord("P0001.png", 200, 200, boxes)], skips=skips)
    assert samples == [
        {
            "image": "P0001.png",
            "crop": None,
            "pad": False,
            "category": "ship",
            "count": 3,
            "caption": "There are three ships in the image.",
        }
    ]
    assert skips == Counter({"count outside [1, 10]": 1})  # 11 planes


def test_no_classes_given_means_the_paper_classes():
    record = ImageRecord("a.png", 100, 100, [box(0, 0, "ship"), box(20, 0, "small vehicle")])
    assert [s["category"] for s in build_counting_set([record], classes=None)] == ["ship"]


def test_min_count_and_class_order():
    boxes = [box(0, 0, "ship"), box(20, 0, "harbor"), box(40, 0, "harbor")]
    samples = build_counting_set([ImageRecord("a.png", 100, 100, boxes)], min_count=2)
    assert [(s["category"], s["count"]) for s in samples] == [("harbor", 2)]
    samples = build_counting_set([ImageRecord("a.png", 100, 100, boxes)], classes=("ship", "harbor"))
    assert [s["category"] for s in samples] == ["ship", "harbor"]


def test_tiles_count_objects_fully_inside_and_skip_cut_classes():
    boxes = [
        box(10, 10, "ship"),
        box(30, 10, "ship"),  # left tile
        box(150, 50, "ship"),  # right tile
        box(20, 60, "plane"),
        box(95, 60, "plane"),  # plane cut by the border at x = 100
        box(120, 20, "bridge"),  # right tile
    ]
    skips = Counter()
    samples = build_counting_set([ImageRecord("b.png", 200, 100, boxes)], tile=100, skips=skips)
    got = [(s["crop"], s["category"], s["count"]) for s in samples]
    # tile order, then COUNT_CLASSES order (bridge before ship)
    assert got == [([0, 0, 100, 100], "ship", 2), ([100, 0, 100, 100], "bridge", 1), ([100, 0, 100, 100], "ship", 1)]
    assert skips == Counter({"object cut by the window border": 2})  # the plane class in both tiles


def test_tiles_of_a_cropped_record_are_offset_into_the_file():
    record = ImageRecord("c.png", 100, 100, [box(60, 60, "ship")], crop=(500, 300, 100, 100))
    assert build_counting_set([record], tile=50)[0]["crop"] == [550, 350, 50, 50]
    assert build_counting_set([record])[0]["crop"] == [500, 300, 100, 100]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_count": 0}, "within"),
        ({"max_count": 11}, "within"),
        ({"min_count": 5, "max_count": 4}, "within"),
        ({"tile": 0}, "tile"),
        ({"classes": ()}, "no classes"),
        ({"square": "stretch"}, "square policy"),
    ],
)
def test_build_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_counting_set([], **kwargs)


def test_counting_metrics_top_k_and_confusion():
    sims = np.zeros((4, 10))
    sims[0, 2] = 1.0  # true 3, predicted 3
    sims[1, [0, 1]] = [0.9, 0.5]  # true 2, predicted 1, true count 2nd
    sims[2] = np.linspace(1, 0, 10)  # true 10, ranked last
    sims[3, [4, 5]] = 0.7  # true 6 ties count 5 (lower wins) -> 2nd
    m = counting_metrics(sims, np.array([3, 2, 10, 6]))
    assert m["top1"] == 25.0
    assert m["top2"] == 75.0
    assert [m[f"top{k}"] for k in range(3, 10)] == [75.0] * 7
    assert m["top10"] == 100.0
    confusion = np.array(m["confusion"])
    assert confusion.shape == (10, 10)
    assert confusion[2, 2] == 1.0 and confusion[1, 0] == 1.0 and confusion[9, 0] == 1.0 and confusion[5, 4] == 1.0
    assert confusion[0].sum() == 0.0  # no sample with one object
    assert m["support"] == [0, 1, 1, 0, 0, 1, 0, 0, 0, 1]


def test_confusion_rows_are_normalised():
    sims = np.zeros((3, 10))
    sims[:2, 3] = 1.0
    sims[2, 4] = 1.0
    confusion = np.array(counting_metrics(sims, np.array([4, 4, 4]))["confusion"])
    np.testing.assert_allclose(confusion[3, [3, 4]], [2 / 3, 1 / 3])
    assert confusion.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "sims, counts, message",
    [
        (np.zeros((2, 10)), np.array([0, 1]), r"\[1, 10\]"),
        (np.zeros((2, 10)), np.array([11, 1]), r"\[1, 10\]"),
        (np.zeros((2, 10)), np.array([1]), "1 labels for 2 rows"),
        (np.zeros((0, 10)), np.array([], dtype=int), "empty"),
    ],
)
def test_counting_metrics_reject_bad_input(sims, counts, message):
    with pytest.raises(ValueError, match=message):
        counting_metrics(sims, counts)


def test_counting_metrics_are_json_ready():
    import json

    m = counting_metrics(np.eye(10), np.arange(1, 11))
    assert json.loads(json.dumps(m)) == m
    assert m["top1"] == 100.0 and np.trace(np.array(m["confusion"])) == 10.0


# --- what is counted is what the model sees ----------------------------------------------

COLOURS = {"left": (255, 0, 0), "centre": (0, 255, 0), "right": (0, 0, 255)}
OBJECT_X = {"left": 50, "centre": 550, "right": 1050}  # 100 px wide, y 250-350, on a 1200 x 600 scene


@pytest.fixture
def wide_scene(tmp_path):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1200, 600), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    for name, x in OBJECT_X.items():
        draw.rectangle((x, 250, x + 99, 349), fill=COLOURS[name])
    image.save(tmp_path / "P0001.png")
    boxes = [Box(x, 250, 100, 100, "ship") for x in OBJECT_X.values()]
    return tmp_path, ImageRecord("P0001.png", 1200, 600, boxes)


def colours_seen(tensor, transform_cfg) -> set[str]:
    """Which object colours survive in the model's input tensor (un-normalised)."""
    mean = torch.tensor(transform_cfg["mean"]).view(3, 1, 1)
    std = torch.tensor(transform_cfg["std"]).view(3, 1, 1)
    rgb = ((tensor * std + mean) * 255).permute(1, 2, 0).reshape(-1, 3)
    return {
        name
        for name, c in COLOURS.items()
        if ((rgb - torch.tensor(c, dtype=torch.float32)).abs().max(dim=1).values < 40).sum() > 20
    }


import torch  # noqa: E402


@pytest.mark.parametrize(
    "policy, expected",
    [
        ({"square": "center"}, [(("centre",), [300, 0, 600, 600])]),
        ({"square": "pad"}, [(("left", "centre", "right"), None)]),
        (
            {"square": "center", "tile": 400},
            [
                (("left",), [0, 0, 400, 400]),
                (("centre",), [400, 0, 400, 400]),
                (("right",), [800, 0, 400, 400]),
                (("left",), [0, 200, 400, 400]),
                (("centre",), [400, 200, 400, 400]),
                (("right",), [800, 200, 400, 400]),
            ],
        ),
    ],
)
@pytest.mark.parametrize("resize_mode", ["shortest", "squash", "longest"])
def test_a_wide_scene_counts_exactly_the_objects_the_model_sees(wide_scene, policy, expected, resize_mode):
    import open_clip

    from remoteclip.evaluate.features import region

    root, record = wide_scene
    samples = build_counting_set([record], classes=("ship",), **policy)
    assert [(s["count"], s["crop"]) for s in samples] == [(len(names), crop) for names, crop in expected]
    cfg = {"mean": open_clip.OPENAI_DATASET_MEAN, "std": open_clip.OPENAI_DATASET_STD}
    transform = open_clip.image_transform(224, is_train=False, resize_mode=resize_mode, **cfg)
    for sample, (names, _) in zip(samples, expected):
        pixels = transform(region(str(root / sample["image"]), sample["crop"], sample["pad"]))
        assert pixels.shape == (3, 224, 224)
        # the counted objects are exactly the objects in the pixels the model scores
        assert colours_seen(pixels, cfg) == set(names), (policy, resize_mode, sample)


def test_without_a_square_policy_the_centre_crop_would_hide_counted_objects(wide_scene):
    """Why the policy exists: the whole 1200 x 600 scene through the usual transform loses two objects."""
    import open_clip

    from remoteclip.evaluate.features import region

    root, _ = wide_scene
    cfg = {"mean": open_clip.OPENAI_DATASET_MEAN, "std": open_clip.OPENAI_DATASET_STD}
    pixels = open_clip.image_transform(224, is_train=False, **cfg)(region(str(root / "P0001.png")))
    assert colours_seen(pixels, cfg) == {"centre"}


def test_an_object_cut_by_the_central_square_skips_its_class():
    boxes = [Box(250, 250, 100, 100, "ship"), Box(600, 100, 50, 50, "plane")]  # the ship straddles x = 300
    skips = Counter()
    samples = build_counting_set([ImageRecord("a.png", 1200, 600, boxes)], skips=skips)
    assert [(s["category"], s["count"], s["crop"]) for s in samples] == [("plane", 1, [300, 0, 600, 600])]
    assert skips == Counter({"object cut by the window border": 1})


def test_counting_set_without_any_sample_names_the_classes_and_the_root(tmp_path):
    from conftest import synthesize_dataset
    from remoteclip.config import DatasetSpec
    from remoteclip.errors import FormatError
    from remoteclip.evaluate.sets import counting_set

    synthesize_dataset(tmp_path, "count", images=4, splits={"val": 1.0})
    spec = DatasetSpec(
        name="count",
        group="COUNT",
        format="dota",
        root=tmp_path,
        options={"splits": ["val"]},
        synthetic=None,
        strict=False,
    )
    settings = {"classes": ["helicopter"], "min_count": 1, "max_count": 10, "tile": None, "square": "center"}
    with pytest.raises(FormatError, match=rf"{tmp_path}.*no counting sample.*helicopter.*4 images.*classes in the"):
        counting_set(spec, settings)
