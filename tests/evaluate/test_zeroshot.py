import numpy as np
import pytest
import torch

from remoteclip.evaluate.zeroshot import classify, readable_name, zeroshot_metrics


def prompts_and_images(n_classes=8, n_images=2000, dims=32, seed=0):
    rng = np.random.default_rng(seed)
    prompts = rng.normal(size=(n_classes, dims))
    labels = rng.integers(0, n_classes, n_images)
    images = prompts[labels] + rng.normal(scale=0.05, size=(n_images, dims))
    return prompts, images, labels


def test_images_built_to_match_their_prompt_score_100():
    prompts, images, labels = prompts_and_images()
    m = zeroshot_metrics(classify(images, prompts), labels, len(prompts))
    assert m == {"acc1": 100.0, "acc5": 100.0, "mean_per_class_recall": 100.0}


def test_shuffled_labels_score_about_chance():
    prompts, images, labels = prompts_and_images()
    shuffled = np.random.default_rng(1).permutation(labels)
    m = zeroshot_metrics(classify(images, prompts), shuffled, len(prompts))
    assert 9 < m["acc1"] < 16  # chance 12.5
    assert 9 < m["mean_per_class_recall"] < 16
    assert 55 < m["acc5"] < 70  # chance 5/8 = 62.5


def test_logits_are_scaled_cosines_and_accept_torch():
    logits = classify(torch.tensor([[3.0, 0.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    np.testing.assert_allclose(logits, [[100.0, 100 / np.sqrt(2)]])


def test_template_ensemble_averages_normalised_prompts():
    templates = np.array(
        [
            [[2.0, 0.0], [0.0, 1.0]],  # class 0: normalised mean (0.5, 0.5) -> diagonal
            [[1.0, 0.0], [3.0, 0.0]],
        ]
    )
    logits = classify(np.array([[1.0, 1.0]]), templates, logit_scale=1.0)
    np.testing.assert_allclose(logits, [[1.0, 1 / np.sqrt(2)]])


def test_hand_metrics_with_ties_go_to_the_lower_class():
    logits = np.array(
        [
            [1.0, 1.0, 0.0],  # label 1 ties class 0 -> top-2 only
            [0.0, 2.0, 1.0],  # label 2 -> 2nd
            [3.0, 0.0, 0.0],  # label 0 -> hit
            [0.0, 0.0, 0.0],
        ]
    )  # label 0, all tied -> hit (lowest index)
    labels = np.array([1, 2, 0, 0])
    m = zeroshot_metrics(logits, labels, 3)
    assert m["acc1"] == 50.0
    assert m["acc5"] == 100.0  # top-min(5, 3)
    assert m["mean_per_class_recall"] == pytest.approx(100 / 3)  # class 0: 1, class 1: 0, class 2: 0


def test_acc5_uses_five_when_there_are_more_classes():
    logits = np.tile(np.arange(7, 0, -1, dtype=float), (2, 1))  # class 0 best ... class 6 worst
    m = zeroshot_metrics(logits, np.array([4, 5]), 7)
    assert (m["acc1"], m["acc5"]) == (0.0, 50.0)


def test_mean_per_class_recall_ignores_classes_without_test_samples():
    logits = np.array([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 0]])
    m = zeroshot_metrics(logits, np.array([0, 1, 1]), 3)  # class 2 never occurs
    assert m["mean_per_class_recall"] == pytest.approx(75.0)  # (1 + 0.5) / 2, not / 3


@pytest.mark.parametrize(
    "logits, labels, n, message",
    [
        (np.zeros((0, 3)), np.zeros(0, int), 3, "empty"),
        (np.ones((2, 3)), np.array([0, 1]), 4, "3 columns for 4 classes"),
        (np.ones((2, 3)), np.array([0]), 3, "1 labels for 2 rows"),
        (np.ones((2, 3)), np.array([0, 3]), 3, "outside"),
        (np.ones((2, 3)), np.array([0.5, 1.0]), 3, "integers"),
        (np.ones((2, 3)), np.array([0, 1]), 0, "n_classes"),
    ],
)
def test_zeroshot_metrics_reject_bad_input(logits, labels, n, message):
    with pytest.raises(ValueError, match=message):
        zeroshot_metrics(logits, labels, n)


def test_classify_rejects_mismatched_dims():
    with pytest.raises(ValueError, match="dimensions"):
        classify(np.ones((2, 3)), np.ones((4, 2)))


@pytest.mark.parametrize(
    "folder, name",
    [
        ("DenseResidential", "dense residential"),
        ("baseball_field", "baseball field"),
        ("aGrass", "grass"),
        ("dRiverLake", "river lake"),
        ("storagetanks", "storagetanks"),
        ("SeaLake", "sea lake"),
        ("Medium_Residential", "medium residential"),
        ("ground-track-field", "ground track field"),
        ("airport", "airport"),
    ],
)
def test_readable_name(folder, name):
    assert readable_name(folder) == name


def test_readable_name_rejects_empty():
    with pytest.raises(ValueError, match="empty"):
        readable_name("__")
