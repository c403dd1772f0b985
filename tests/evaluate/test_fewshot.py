import numpy as np
import pytest

from remoteclip.evaluate.fewshot import fewshot, sample_shots

LABELS = np.array([0] * 10 + [1] * 3 + [2] * 40)


def test_samples_k_per_class_without_replacement():
    index = sample_shots(LABELS, 4, seed=0)
    assert np.bincount(LABELS[index]).tolist() == [4, 3, 4]  # class 1 has only 3: all of them
    assert len(set(index.tolist())) == index.size
    assert index.tolist() == sorted(index.tolist())


def test_sampling_is_deterministic_and_varies_with_the_seed():
    assert sample_shots(LABELS, 5, 1).tolist() == sample_shots(LABELS, 5, 1).tolist()
    assert sample_shots(LABELS, 5, 1).tolist() != sample_shots(LABELS, 5, 2).tolist()


def test_a_class_draw_depends_only_on_that_class():
    extended = np.concatenate([LABELS, [3] * 7])
    a, b = sample_shots(LABELS, 2, 0), sample_shots(extended, 2, 0)
    assert b[b < LABELS.size].tolist() == a.tolist()


def test_sampling_accepts_any_label_order():
    shuffled = np.random.default_rng(0).permutation(LABELS)
    index = sample_shots(shuffled, 2, 0)
    assert np.bincount(shuffled[index]).tolist() == [2, 2, 2]


@pytest.mark.parametrize(
    "labels, shots, seed, message",
    [
        (LABELS, 0, 0, "shots"),
        (LABELS, 2, -1, "seed"),
        (np.array([], dtype=int), 1, 0, "no labels"),
        (np.array([0, -1]), 1, 0, "negative"),
    ],
)
def test_sampling_rejects_bad_input(labels, shots, seed, message):
    with pytest.raises(ValueError, match=message):
        sample_shots(labels, shots, seed)


def data(seed=0, n_classes=3):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_classes, 5)) * 2
    y = np.repeat(np.arange(n_classes), [12, 12, 2][:n_classes])
    yt = np.arange(30) % n_classes
    return centers[y] + rng.normal(size=(y.size, 5)), y, centers[yt] + rng.normal(size=(30, 5)), yt, n_classes


def test_validated_fewshot_reports_mean_and_std_over_seeds():
    result = fewshot(*data(), shots=(1, 4), seeds=3, weight_decay=0.01, max_iter=100)
    assert set(result["metrics"]) == {"1", "4"}
    for _k, entry in result["metrics"].items():
        assert len(entry["acc1"]) == 3
        assert entry["mean"] == pytest.approx(np.mean(entry["acc1"]))
        assert entry["std"] == pytest.approx(np.std(entry["acc1"]))
    assert result["metrics"]["1"]["n_train"] == [3, 3, 3]
    assert result["metrics"]["4"]["n_train"] == [10, 10, 10]  # class 2 has only 2 samples
    protocol = result["protocol"]
    assert protocol["short_classes"] == {"4": [2]}
    assert protocol["weight_decay"] == 0.01
    assert "fixed by the caller" in protocol["weight_decay_source"]
    assert protocol["seeds"] == [0, 1, 2]
    assert protocol["probe"]["name"] == "validated"


def test_fewshot_is_deterministic_and_uses_the_given_seeds():
    a = fewshot(*data(), shots=(2,), seeds=[4, 9], weight_decay=0.1, max_iter=50)
    b = fewshot(*data(), shots=(2,), seeds=[4, 9], weight_decay=0.1, max_iter=50)
    assert a == b
    assert a["protocol"]["seeds"] == [4, 9]


def test_validated_fewshot_requires_a_weight_decay():
    with pytest.raises(ValueError, match="needs weight_decay"):
        fewshot(*data(), shots=(1,), seeds=1)


def test_paper_fewshot_says_it_selects_on_test():
    result = fewshot(*data(), shots=(2,), seeds=2, protocol="paper", epochs=5, batch_size=100, weight_decay=0.5)
    assert "test" in result["protocol"]["selection"]
    assert len(result["metrics"]["2"]["chosen"]) == 2
    assert result["protocol"]["probe"]["name"] == "paper"
    # the paper's search starts from its own 4e-5; a caller's decay is recorded as unused
    assert result["protocol"]["ignored_weight_decay"] == 0.5
    assert all(c["weight_decay"] != 0.5 for c in result["metrics"]["2"]["chosen"])


def test_fewshot_rejects_empty_shots_and_seeds():
    with pytest.raises(ValueError, match="at least one"):
        fewshot(*data(), shots=(), weight_decay=0.1)
    with pytest.raises(ValueError, match="at least one"):
        fewshot(*data(), seeds=0, weight_decay=0.1)


def test_fewshot_rejects_features_and_labels_of_different_lengths():
    train_x, train_y, test_x, test_y, n = data()
    with pytest.raises(ValueError, match="26 labels for 20 rows"):
        fewshot(train_x[:20], train_y, test_x, test_y, n, weight_decay=0.1)


def test_fewshot_result_survives_json():
    import json

    result = fewshot(*data(), shots=(1, 4), seeds=2, weight_decay=0.1, max_iter=50)
    assert json.loads(json.dumps(result)) == result
