"""The image side of evaluation: which images a benchmark's features hold, and how the main
process decodes them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from remoteclip.evaluate.features import Images, embed
from remoteclip.evaluate.registry import TASKS_BY_GROUP, reads_train_images
from remoteclip.evaluate.scored import scored_items
from remoteclip.evaluate.tasks import run

TEMPLATES = ["a satellite photo of {}."]
SETTINGS = {
    "linear_probe": {"protocol": "validated"},
    "knn": {"k": 5, "temperature": 0.07},
    "fewshot": {"shots": [1], "seeds": 1},
}


def test_zeroshot_alone_embeds_the_test_images_only_and_scores_the_same(tiny_clip, cls_split):
    model, preprocess, tokenizer = tiny_clip
    everything, texts = embed(model, preprocess, tokenizer, cls_split, TEMPLATES, ["words"], "cpu", workers=0)
    test_only, _ = embed(
        model, preprocess, tokenizer, cls_split, TEMPLATES, ["words"], "cpu", workers=0, test_only=True
    )
    test = everything["is_test"]
    assert len(test_only["features"]) == len(cls_split["test"]) < len(everything["features"])
    assert test_only["is_test"].all()
    np.testing.assert_array_equal(test_only["features"], everything["features"][test])
    np.testing.assert_array_equal(test_only["labels"], everything["labels"][test])
    np.testing.assert_array_equal(test_only["files"], everything["files"][test])
    scores = [
        run("zeroshot", "scenes", {"name": "tiny"}, cls_split, i, texts, SETTINGS)["metrics"]
        for i in (everything, test_only)
    ]
    assert scores[0] == scores[1]


@pytest.mark.parametrize("task", ["linear_probe", "knn", "fewshot"])
def test_a_task_that_trains_refuses_test_only_features(task, cls_split):
    n_test, dims = len(cls_split["test"]), 8
    images = {
        "features": np.eye(n_test, dims, dtype=np.float32) + 0.1,
        "norms": np.ones(n_test, np.float32),
        "labels": np.array([label for _, label in cls_split["test"]]),
        "is_test": np.ones(n_test, bool),
    }
    with pytest.raises(ValueError, match="test images only.*rerun the features rule"):
        run(task, "scenes", {"name": "tiny"}, cls_split, images, {}, SETTINGS)


def test_only_the_training_tasks_need_the_train_images():
    assert reads_train_images(TASKS_BY_GROUP["CLS"])
    assert not reads_train_images(["zeroshot", "retrieval", "counting"])
    assert reads_train_images(["zeroshot", "knn"])


def test_the_main_process_transforms_an_image_on_one_thread_and_gives_the_threads_back(cls_split):
    seen = []

    def transform(image):
        seen.append(torch.get_num_threads())
        return torch.zeros(1)

    items, _ = scored_items(cls_split)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        Images(items[:2], transform)[1]
        assert seen == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
