import numpy as np
import pytest
import torch

from remoteclip.evaluate.knn import knn_metrics, knn_predict, knn_scores

# unit vectors with cosine 0.9, 0.6, 0.6 and -1 to the query [1, 0]
TRAIN = np.array([[0.9, np.sqrt(1 - 0.81)], [0.6, 0.8], [0.6, -0.8], [-1.0, 0.0]])
LABELS = np.array([0, 1, 1, 1])
QUERY = np.array([[1.0, 0.0]])


def test_weighted_voting_differs_from_majority():
    # k = 3: one class-0 neighbour at 0.9 against two class-1 neighbours at 0.6
    assert knn_predict(TRAIN, LABELS, QUERY, 2, k=3, temperature=0.07).tolist() == [0]
    assert knn_predict(TRAIN, LABELS, QUERY, 2, k=3, temperature=1e6).tolist() == [1]  # ~unweighted
    votes = knn_scores(TRAIN, LABELS, QUERY, 2, k=3, temperature=0.07)
    np.testing.assert_allclose(votes, [[np.exp(0.9 / 0.07), 2 * np.exp(0.6 / 0.07)]])


def test_k_is_clipped_to_the_train_size():
    all_four = [[np.exp(0.9 / 0.07), 2 * np.exp(0.6 / 0.07) + np.exp(-1 / 0.07)]]
    np.testing.assert_allclose(knn_scores(TRAIN, LABELS, QUERY, 2, k=100), all_four)


def test_neighbours_tied_in_similarity_are_taken_in_index_order():
    train = TRAIN[[2, 1]]  # both at cosine 0.6
    assert knn_predict(train, np.array([0, 1]), QUERY, 2, k=1).tolist() == [0]
    assert knn_predict(train, np.array([1, 0]), QUERY, 2, k=1).tolist() == [1]


def test_tied_votes_go_to_the_lower_class():
    assert knn_predict(TRAIN[[1, 2]], np.array([1, 0]), QUERY, 2, k=2).tolist() == [0]


def dino_knn(train, labels, test, n_classes, k, t):
    """ITRA/DINO knn_classifier: torch.topk, one-hot scatter, exp(sim / T) weights."""
    train = torch.nn.functional.normalize(torch.as_tensor(train), dim=1)
    test = torch.nn.functional.normalize(torch.as_tensor(test), dim=1)
    sim, idx = (test @ train.T).topk(k, largest=True, sorted=True)
    onehot = torch.zeros(test.shape[0] * k, n_classes, dtype=sim.dtype)
    onehot.scatter_(1, torch.as_tensor(labels)[idx].view(-1, 1), 1)
    probs = (onehot.view(test.shape[0], k, n_classes) * sim.div(t).exp().view(test.shape[0], k, 1)).sum(1)
    return probs.argmax(1).numpy()


@pytest.mark.parametrize("seed", range(2))
def test_matches_the_dino_reference_on_random_features(seed):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(6, 16))
    train_y, test_y = rng.integers(0, 6, 300), rng.integers(0, 6, 120)
    train = centers[train_y] + rng.normal(scale=1.2, size=(300, 16))
    test = centers[test_y] + rng.normal(scale=1.2, size=(120, 16))
    ours = knn_predict(train, train_y, test, 6)
    np.testing.assert_array_equal(ours, dino_knn(train, train_y, test, 6, 20, 0.07))
    m = knn_metrics(train, train_y, test, test_y, 6)
    assert m["acc1"] == pytest.approx(100 * np.mean(ours == test_y))
    assert set(m) == {"acc1", "acc5", "mean_per_class_recall"}


def test_blocks_of_test_rows_give_the_same_votes(monkeypatch):
    rng = np.random.default_rng(0)
    train, test, labels = rng.normal(size=(50, 4)), rng.normal(size=(13, 4)), rng.integers(0, 3, 50)
    whole = knn_scores(train, labels, test, 3, k=5)
    monkeypatch.setattr("remoteclip.evaluate.knn._BLOCK", 50 * 4)  # 4 test rows per block
    np.testing.assert_allclose(knn_scores(train, labels, test, 3, k=5), whole)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 0}, "positive integer"),
        ({"temperature": 0.0}, "temperature"),
        ({"train_x": np.zeros((0, 2))}, "empty"),
        ({"train_y": np.array([0, 1])}, "2 labels for 4 rows"),
        ({"test_x": np.ones((1, 3))}, "dimensions"),
        ({"train_y": np.array([0, 1, 1, 2])}, "outside"),
    ],
)
def test_bad_input_raises(kwargs, message):
    args = {"train_x": TRAIN, "train_y": LABELS, "test_x": QUERY, "n_classes": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        knn_predict(**args)
