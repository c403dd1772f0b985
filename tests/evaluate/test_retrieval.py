import numpy as np
import pytest
import torch

from remoteclip.evaluate.retrieval import group_captions, recall_at_k, retrieval_metrics

KEYS = [f"{d}_R@{k}" for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)]


# --- caption grouping as the official retrieval.py ---------------------------------------

def test_group_captions_sorts_images_capitalises_and_merges_duplicates():
    entries = [
        {"filename": "b.jpg", "sentences": [{"raw": "two Planes AT the airport"}, {"raw": "an airport"}]},
        {"filename": "a.jpg", "sentences": [{"raw": "a river"}]},
        {"filename": "b.jpg", "sentences": [{"raw": "many planes"}]},
    ]
    files, captions, owner = group_captions(entries)
    assert files == ["a.jpg", "b.jpg"]
    # str.capitalize lowers the rest of the caption, exactly as the official script
    assert captions == ["A river", "Two planes at the airport", "An airport", "Many planes"]
    assert owner.tolist() == [0, 1, 1, 1]
    assert owner.dtype == np.int64


def test_group_captions_groups_even_with_one_caption_per_image():
    files, captions, owner = group_captions([{"filename": "z", "sentences": [{"raw": "z"}]},
                                             {"filename": "y", "sentences": [{"raw": "y"}]}])
    assert (files, captions, owner.tolist()) == (["y", "z"], ["Y", "Z"], [0, 1])


def test_group_captions_drops_images_without_sentences_with_a_warning(caplog):
    files, _, _ = group_captions([{"filename": "a", "sentences": []}, {"filename": "b", "sentences": [{"raw": "x"}]}])
    assert files == ["b"]
    assert "1 retrieval entries without sentences" in caplog.text


@pytest.mark.parametrize("entries, message", [
    ([], "no captions"),
    ([{"sentences": [{"raw": "x"}]}], "entry 0"),
    ([{"filename": "a", "sentences": [{"tokens": ["x"]}]}], "no 'raw'"),
])
def test_group_captions_rejects_bad_entries(entries, message):
    with pytest.raises(ValueError, match=message):
        group_captions(entries)


# --- recall_at_k -------------------------------------------------------------------------

def test_recall_at_k_counts_a_query_once_whatever_its_number_of_positives():
    scores = np.array([[0.9, 0.8, 0.7, 0.1],
                       [0.2, 0.5, 0.5, 0.5]])
    positives = np.array([[False, False, True, True],
                          [False, False, False, True]])
    # row 0: best positive is 3rd; row 1: the positive ties with two lower indices -> 3rd
    assert [recall_at_k(scores, positives, k) for k in (1, 2, 3, 4)] == [0.0, 0.0, 1.0, 1.0]
    positives[1] = [False, True, False, False]  # now the first of the tied group
    assert [recall_at_k(scores, positives, k) for k in (1, 2, 3)] == [0.5, 0.5, 1.0]


def test_tie_with_the_kth_score_counts_only_for_the_lower_index():
    scores = np.array([[0.5, 0.5, 0.1]])
    assert recall_at_k(scores, np.array([[True, False, False]]), 1) == 1.0
    assert recall_at_k(scores, np.array([[False, True, False]]), 1) == 0.0
    assert recall_at_k(scores, np.array([[False, True, False]]), 2) == 1.0


def test_ties_inside_the_top_k_do_not_matter():
    scores = np.array([[0.9, 0.9, 0.9, 0.1]])
    for j in range(3):
        positives = np.zeros((1, 4), dtype=bool)
        positives[0, j] = True
        assert recall_at_k(scores, positives, 3) == 1.0


def test_k_above_the_number_of_candidates_is_clipped():
    scores = np.array([[0.9, 0.1], [0.3, 0.2]])
    positives = np.array([[False, True], [False, True]])
    assert recall_at_k(scores, positives, 10) == recall_at_k(scores, positives, 2) == 1.0


def clip_benchmark_recall(scores, positives, k):
    """CLIP_benchmark's recall_at_k (torch.topk, one-hot), as the official script calls it."""
    scores, positives = torch.as_tensor(scores), torch.as_tensor(positives)
    top = torch.topk(scores, k, dim=1)[1]
    onehot = torch.nn.functional.one_hot(top, num_classes=scores.shape[1])
    true_positives = (onehot * positives.view(scores.shape[0], 1, -1)).sum(dim=(1, 2))
    return ((true_positives / positives.sum(dim=1)) > 0).float().mean().item()


@pytest.mark.parametrize("seed", range(3))
def test_recall_matches_clip_benchmark_topk_without_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(40, 25))
    positives = rng.random((40, 25)) < 0.1
    positives[np.arange(40), rng.integers(0, 25, 40)] = True
    for k in (1, 5, 10):
        assert recall_at_k(scores, positives, k) == pytest.approx(clip_benchmark_recall(scores, positives, k))


@pytest.mark.parametrize("scores, positives, k, message", [
    (np.zeros((0, 3)), np.zeros((0, 3), bool), 1, "empty"),
    (np.ones((2, 3)), np.ones((2, 2), bool), 1, "shape"),
    (np.ones((2, 3)), np.ones((2, 3)), 1, "bool"),
    (np.ones((2, 3)), np.ones((2, 3), bool), 0, "positive integer"),
    (np.ones((2, 3)), np.array([[True, False, False], [False, False, False]]), 1, "no positive"),
    (np.array([[np.nan, 1.0]]), np.array([[True, False]]), 1, "NaN"),
])
def test_recall_at_k_rejects_bad_input(scores, positives, k, message):
    with pytest.raises(ValueError, match=message):
        recall_at_k(scores, positives, k)


# --- retrieval_metrics -------------------------------------------------------------------

def test_retrieval_metrics_hand_case_with_several_captions_and_ties():
    images = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]], dtype=float)  # images 0 and 2 tie exactly
    texts = np.array([[1, 0, 0], [0.6, 0.8, 0], [0, 1, 0], [1, 0, 0], [0.8, 0, 0.6]])
    owner = np.array([0, 0, 1, 2, 2])
    m = retrieval_metrics(images * 3, texts, owner)  # scale: features are L2-normalised inside
    # text->image top-1: caption 0 and 2 hit; 1 loses to image 1; 3 and 4 lose the tie to image 0
    assert m["text_to_image_R@1"] == pytest.approx(40.0)
    # image->text top-1: images 0 and 1 hit; image 2's best caption ties with caption 0 (lower index)
    assert m["image_to_text_R@1"] == pytest.approx(200 / 3)
    for key in ("image_to_text_R@5", "image_to_text_R@10", "text_to_image_R@5", "text_to_image_R@10"):
        assert m[key] == 100.0
    assert m["mean_recall"] == pytest.approx((40 + 200 / 3 + 400) / 6)
    assert set(m) == set(KEYS) | {"mean_recall"}


def loop_retrieval(images, texts, owner, ks=(1, 5, 10)):
    """Independent formulation: plain loops, Python's stable sort on (-score, index)."""
    images = [v / np.linalg.norm(v) for v in images]
    texts = [v / np.linalg.norm(v) for v in texts]

    def hit(query, candidates, is_positive, k):
        order = sorted(range(len(candidates)), key=lambda j: -float(np.dot(query, candidates[j])))
        return any(is_positive(j) for j in order[:k])

    out = {}
    for k in ks:
        out[f"image_to_text_R@{k}"] = 100 * np.mean(
            [hit(img, texts, lambda j, i=i: owner[j] == i, k) for i, img in enumerate(images)])
    for k in ks:
        out[f"text_to_image_R@{k}"] = 100 * np.mean(
            [hit(txt, images, lambda j, t=t: owner[t] == j, k) for t, txt in enumerate(texts)])
    out["mean_recall"] = np.mean(list(out.values()))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_retrieval_metrics_match_a_loop_formulation(seed):
    rng = np.random.default_rng(seed)
    n_images = 30
    per_image = rng.integers(1, 6, n_images)
    owner = np.repeat(np.arange(n_images), per_image)
    images = rng.normal(size=(n_images, 8))
    texts = images[owner] + rng.normal(scale=1.5, size=(owner.size, 8))  # informative, not perfect
    fast, slow = retrieval_metrics(images, texts, owner), loop_retrieval(images, texts, owner)
    assert fast.keys() == slow.keys()
    for key in fast:
        assert fast[key] == pytest.approx(slow[key]), key
    assert 0 < fast["text_to_image_R@1"] < 100


def test_retrieval_metrics_accept_torch_tensors_and_custom_ks():
    rng = np.random.default_rng(0)
    images, texts = rng.normal(size=(5, 4)), rng.normal(size=(7, 4))
    owner = np.array([0, 1, 2, 3, 4, 0, 1])
    a = retrieval_metrics(torch.tensor(images, dtype=torch.float32), torch.tensor(texts), torch.tensor(owner),
                          ks=(1, 3))
    b = retrieval_metrics(images, texts, owner, ks=(1, 3))
    assert set(a) == {"image_to_text_R@1", "image_to_text_R@3", "text_to_image_R@1", "text_to_image_R@3",
                      "mean_recall"}
    for key in a:
        assert a[key] == pytest.approx(b[key])


def test_retrieval_metrics_from_grouped_karpathy_entries():
    entries = [{"filename": f"{name}.jpg", "sentences": [{"raw": name}] * 2} for name in ("c", "a", "b")]
    files, captions, owner = group_captions(entries)
    basis = {"a": [1.0, 0, 0], "b": [0, 1.0, 0], "c": [0, 0, 1.0]}
    images = np.array([basis[f[0]] for f in files])
    texts = np.array([basis[c.lower()] for c in captions])
    assert retrieval_metrics(images, texts, owner)["mean_recall"] == 100.0


@pytest.mark.parametrize("images, texts, owner, message", [
    (np.zeros((0, 3)), np.ones((2, 3)), [0, 0], "image_features: empty"),
    (np.ones((2, 3)), np.ones((2, 4)), [0, 1], "dimensions"),
    (np.ones((2, 3)), np.ones((3, 3)), [0, 1], "2 labels for 3 rows"),
    (np.ones((2, 3)), np.ones((2, 3)), [0, 2], "outside"),
    (np.ones((3, 3)), np.ones((2, 3)), [0, 1], "images have no caption"),
    (np.array([[0.0, 0, 0], [1, 0, 0]]), np.ones((2, 3)), [0, 1], "all-zero"),
])
def test_retrieval_metrics_reject_bad_input(images, texts, owner, message):
    with pytest.raises(ValueError, match=message):
        retrieval_metrics(images, texts, np.array(owner))
