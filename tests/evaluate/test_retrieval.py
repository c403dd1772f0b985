import numpy as np
import pytest
import torch

from remoteclip.evaluate.retrieval import (
    TIE_ORDERS,
    group_captions,
    query_hits,
    recall_at_k,
    recall_bounds,
    retrieval_metrics,
)

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
    files, captions, owner = group_captions(
        [{"filename": "z", "sentences": [{"raw": "z"}]}, {"filename": "y", "sentences": [{"raw": "y"}]}]
    )
    assert (files, captions, owner.tolist()) == (["y", "z"], ["Y", "Z"], [0, 1])


def test_group_captions_drops_images_without_sentences_with_a_warning(caplog):
    files, _, _ = group_captions([{"filename": "a", "sentences": []}, {"filename": "b", "sentences": [{"raw": "x"}]}])
    assert files == ["b"]
    assert "1 retrieval entries without sentences" in caplog.text


@pytest.mark.parametrize(
    "entries, message",
    [
        ([], "no captions"),
        ([{"sentences": [{"raw": "x"}]}], "entry 0"),
        ([{"filename": "a", "sentences": [{"tokens": ["x"]}]}], "no 'raw'"),
    ],
)
def test_group_captions_rejects_bad_entries(entries, message):
    with pytest.raises(ValueError, match=message):
        group_captions(entries)


# --- recall_at_k -------------------------------------------------------------------------


def test_recall_at_k_counts_a_query_once_whatever_its_number_of_positives():
    scores = np.array([[0.9, 0.8, 0.7, 0.1], [0.2, 0.5, 0.5, 0.5]])
    positives = np.array([[False, False, True, True], [False, False, False, True]])
    # row 0: best positive is 3rd; row 1 (stable order): the positive ties with two lower indices -> 3rd
    assert [recall_at_k(scores, positives, k, "stable") for k in (1, 2, 3, 4)] == [0.0, 0.0, 1.0, 1.0]
    positives[1] = [False, True, False, False]  # now the first of the tied group
    assert [recall_at_k(scores, positives, k, "stable") for k in (1, 2, 3)] == [0.5, 0.5, 1.0]


def test_stable_order_counts_a_tie_with_the_kth_score_only_for_the_lower_index():
    scores = np.array([[0.5, 0.5, 0.1]])
    assert recall_at_k(scores, np.array([[True, False, False]]), 1, "stable") == 1.0
    assert recall_at_k(scores, np.array([[False, True, False]]), 1, "stable") == 0.0
    assert recall_at_k(scores, np.array([[False, True, False]]), 2, "stable") == 1.0


@pytest.mark.parametrize("tie_order", sorted(TIE_ORDERS))
def test_ties_inside_the_top_k_do_not_matter(tie_order):
    scores = np.array([[0.9, 0.9, 0.9, 0.1]])
    for j in range(3):
        positives = np.zeros((1, 4), dtype=bool)
        positives[0, j] = True
        assert recall_at_k(scores, positives, 3, tie_order) == 1.0
        assert recall_bounds(scores, positives, 3) == {"lowest": 100.0, "highest": 100.0, "tie_dependent": 0}


def test_unknown_tie_order_is_refused():
    with pytest.raises(ValueError, match="unknown tie order 'random'.*stable"):
        recall_at_k(np.ones((1, 2)), np.array([[True, False]]), 1, "random")


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


@pytest.mark.parametrize(
    "scores, positives, k, message",
    [
        (np.zeros((0, 3)), np.zeros((0, 3), bool), 1, "empty"),
        (np.ones((2, 3)), np.ones((2, 2), bool), 1, "shape"),
        (np.ones((2, 3)), np.ones((2, 3)), 1, "bool"),
        (np.ones((2, 3)), np.ones((2, 3), bool), 0, "positive integer"),
        (np.ones((2, 3)), np.array([[True, False, False], [False, False, False]]), 1, "no positive"),
        (np.array([[np.nan, 1.0]]), np.array([[True, False]]), 1, "NaN"),
    ],
)
def test_recall_at_k_rejects_bad_input(scores, positives, k, message):
    with pytest.raises(ValueError, match=message):
        recall_at_k(scores, positives, k)


# --- retrieval_metrics -------------------------------------------------------------------


def test_retrieval_metrics_hand_case_with_several_captions_and_ties():
    images = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]], dtype=float)  # images 0 and 2 tie exactly
    texts = np.array([[1, 0, 0], [0.6, 0.8, 0], [0, 1, 0], [1, 0, 0], [0.8, 0, 0.6]])
    owner = np.array([0, 0, 1, 2, 2])
    m = retrieval_metrics(images * 3, texts, owner, tie_order="stable")  # features are L2-normalised inside
    # text->image top-1: caption 0 and 2 hit; 1 loses to image 1; 3 and 4 lose the tie to image 0
    assert m["text_to_image_R@1"] == pytest.approx(40.0)
    # image->text top-1: images 0 and 1 hit; image 2's best caption ties with caption 0 (lower index)
    assert m["image_to_text_R@1"] == pytest.approx(200 / 3)
    for key in ("image_to_text_R@5", "image_to_text_R@10", "text_to_image_R@5", "text_to_image_R@10"):
        assert m[key] == 100.0
    assert m["mean_recall"] == pytest.approx((40 + 200 / 3 + 400) / 6)
    assert set(m) == set(KEYS) | {"mean_recall", "ties"}
    # the ties: captions 0, 3 and 4 score their own image exactly as another image, so each hits or
    # misses by the order (only caption 2 hits under every order); images 0 and 2 score caption 0 and
    # caption 3 alike, one of them a positive
    ties = m["ties"]
    assert ties["text_to_image_R@1"] == {"lowest": 20.0, "highest": 80.0, "tie_dependent": 3}
    assert ties["image_to_text_R@1"] == {"lowest": pytest.approx(100 / 3), "highest": 100.0, "tie_dependent": 2}
    assert ties["text_to_image_R@5"] == {"lowest": 100.0, "highest": 100.0, "tie_dependent": 0}
    assert ties["mean_recall"]["lowest"] == pytest.approx((20 + 100 / 3 + 400) / 6)
    assert ties["mean_recall"]["highest"] == pytest.approx((80 + 100 + 400) / 6)


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
            [hit(img, texts, lambda j, i=i: owner[j] == i, k) for i, img in enumerate(images)]
        )
    for k in ks:
        out[f"text_to_image_R@{k}"] = 100 * np.mean(
            [hit(txt, images, lambda j, t=t: owner[t] == j, k) for t, txt in enumerate(texts)]
        )
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
    assert fast.keys() - {"ties"} == slow.keys()
    for key in slow:
        assert fast[key] == pytest.approx(slow[key]), key
    assert 0 < fast["text_to_image_R@1"] < 100


def test_retrieval_metrics_accept_torch_tensors_and_custom_ks():
    rng = np.random.default_rng(0)
    images, texts = rng.normal(size=(5, 4)), rng.normal(size=(7, 4))
    owner = np.array([0, 1, 2, 3, 4, 0, 1])
    a = retrieval_metrics(
        torch.tensor(images, dtype=torch.float32), torch.tensor(texts), torch.tensor(owner), ks=(1, 3)
    )
    b = retrieval_metrics(images, texts, owner, ks=(1, 3))
    assert set(a) == {
        "image_to_text_R@1",
        "image_to_text_R@3",
        "text_to_image_R@1",
        "text_to_image_R@3",
        "mean_recall",
        "ties",
    }
    for key in set(a) - {"ties"}:
        assert a[key] == pytest.approx(b[key])


def test_retrieval_metrics_from_grouped_karpathy_entries():
    entries = [{"filename": f"{name}.jpg", "sentences": [{"raw": name}] * 2} for name in ("c", "a", "b")]
    files, captions, owner = group_captions(entries)
    basis = {"a": [1.0, 0, 0], "b": [0, 1.0, 0], "c": [0, 0, 1.0]}
    images = np.array([basis[f[0]] for f in files])
    texts = np.array([basis[c.lower()] for c in captions])
    assert retrieval_metrics(images, texts, owner)["mean_recall"] == 100.0


@pytest.mark.parametrize(
    "images, texts, owner, message",
    [
        (np.zeros((0, 3)), np.ones((2, 3)), [0, 0], "image_features: empty"),
        (np.ones((2, 3)), np.ones((2, 4)), [0, 1], "dimensions"),
        (np.ones((2, 3)), np.ones((3, 3)), [0, 1], "2 labels for 3 rows"),
        (np.ones((2, 3)), np.ones((2, 3)), [0, 2], "outside"),
        (np.ones((3, 3)), np.ones((2, 3)), [0, 1], "images have no caption"),
        (np.array([[0.0, 0, 0], [1, 0, 0]]), np.ones((2, 3)), [0, 1], "all-zero"),
    ],
)
def test_retrieval_metrics_reject_bad_input(images, texts, owner, message):
    with pytest.raises(ValueError, match=message):
        retrieval_metrics(images, texts, np.array(owner))


# --- the official tie order (torch.topk) and the bounds of any order ----------------------


def test_hand_case_where_topk_and_stable_orders_disagree():
    # one image (query) and five captions: its own caption (index 2) is identical to the captions
    # of two other images (1 and 3), so all three score 0.5
    scores = np.array([[0.1, 0.5, 0.5, 0.5, 0.2]])
    positives = np.array([[False, False, True, False, False]])
    topk_pick = set(torch.topk(torch.tensor(scores), 2, dim=1).indices[0].tolist())
    assert topk_pick == {1, 3}, f"torch.topk's CPU tie order changed ({topk_pick}); redo this hand case"
    assert recall_at_k(scores, positives, 2, "stable") == 1.0  # indices 1, 2: its caption is in
    assert recall_at_k(scores, positives, 2, "topk") == 0.0  # indices 1, 3: it is not
    assert recall_bounds(scores, positives, 2) == {"lowest": 0.0, "highest": 100.0, "tie_dependent": 1}
    assert recall_bounds(scores, positives, 1) == {"lowest": 0.0, "highest": 100.0, "tie_dependent": 1}
    assert recall_bounds(scores, positives, 3) == {"lowest": 100.0, "highest": 100.0, "tie_dependent": 0}


def official_retrieval(images, texts, owner, ks=(1, 5, 10), batch_size=64):
    """Independent formulation of the official retrieval.py: F.normalize in torch, scores =
    texts @ images.T (float32), CLIP_benchmark's recall_at_k (one-hot of torch.topk) per batch
    of rows (batchify), `> 0`, mean, x100."""
    images = torch.nn.functional.normalize(torch.as_tensor(images, dtype=torch.float32), dim=-1)
    texts = torch.nn.functional.normalize(torch.as_tensor(texts, dtype=torch.float32), dim=-1)
    scores = texts @ images.t()
    positive_pairs = torch.zeros_like(scores, dtype=bool)
    positive_pairs[torch.arange(len(scores)), torch.as_tensor(owner)] = True

    def cb_recall_at_k(s, p, k):
        top = torch.topk(s, k, dim=1)[1]
        onehot = torch.nn.functional.one_hot(top, num_classes=s.shape[1])
        return (onehot * p.view(s.shape[0], 1, -1)).sum(dim=(1, 2)) / p.sum(dim=1)

    def batchify(s, p, k):
        return torch.cat(
            [cb_recall_at_k(s[a : a + batch_size], p[a : a + batch_size], k) for a in range(0, len(s), batch_size)]
        )

    out = {}
    for k in ks:
        out[f"image_to_text_R@{k}"] = (batchify(scores.T, positive_pairs.T, k) > 0).float().mean().item() * 100
    for k in ks:
        out[f"text_to_image_R@{k}"] = (batchify(scores, positive_pairs, k) > 0).float().mean().item() * 100
    out["mean_recall"] = np.mean(list(out.values()))
    return out


def planted_duplicates(seed, n_images=60, vocabulary=25, dims=16):
    """Features where captions repeat across images: each caption is one of `vocabulary` sentences."""
    rng = np.random.default_rng(seed)
    per_image = rng.integers(1, 6, n_images)
    owner = np.repeat(np.arange(n_images), per_image)
    sentences = rng.normal(size=(vocabulary, dims))
    sentence_of = rng.integers(0, vocabulary, owner.size)
    images = sentences[sentence_of[np.searchsorted(owner, np.arange(n_images))]] + rng.normal(
        scale=0.8, size=(n_images, dims)
    )
    texts = sentences[sentence_of]
    texts = (texts / np.linalg.norm(texts, axis=1, keepdims=True)).astype(np.float32)
    images = (images / np.linalg.norm(images, axis=1, keepdims=True)).astype(np.float32)
    return images, texts, owner


@pytest.mark.parametrize("seed", range(4))
def test_topk_order_agrees_with_the_official_logic_on_planted_duplicates(seed):
    images, texts, owner = planted_duplicates(seed)
    ours, official = retrieval_metrics(images, texts, owner), official_retrieval(images, texts, owner)
    for key in official:
        assert ours[key] == pytest.approx(official[key], abs=1e-4), key  # float32 mean there
    assert sum(t["tie_dependent"] for k, t in ours["ties"].items() if k != "mean_recall") > 0, "no ties planted"


@pytest.mark.parametrize("seed", range(3))
def test_stable_order_agrees_with_the_loop_formulation_on_planted_duplicates(seed):
    images, texts, owner = planted_duplicates(seed)
    ours, slow = retrieval_metrics(images, texts, owner, tie_order="stable"), loop_retrieval(images, texts, owner)
    for key in slow:
        assert ours[key] == pytest.approx(slow[key]), key


def recall_under_order(scores, positives, k, positives_first):
    """R@k (x100) under the best or worst tie order: sort by (-score, positive last / first)."""
    hits = []
    for row, pos in zip(scores, positives):
        order = sorted(range(len(row)), key=lambda j: (-row[j], (not pos[j]) if positives_first else pos[j]))
        hits.append(any(pos[j] for j in order[:k]))
    return 100 * np.mean(hits)


@pytest.mark.parametrize("seed", range(3))
def test_bounds_are_the_extreme_tie_orders_and_contain_both_orders(seed):
    images, texts, owner = planted_duplicates(seed, n_images=30)
    scores = (torch.as_tensor(texts) @ torch.as_tensor(images).T).numpy()
    positives = np.zeros(scores.shape, bool)
    positives[np.arange(len(owner)), owner] = True
    for s, p in ((scores, positives), (scores.T, positives.T)):
        for k in (1, 5, 10):
            bounds = recall_bounds(s, p, k)
            assert bounds["lowest"] == pytest.approx(recall_under_order(s, p, k, positives_first=False))
            assert bounds["highest"] == pytest.approx(recall_under_order(s, p, k, positives_first=True))
            for order in TIE_ORDERS:
                assert bounds["lowest"] - 1e-9 <= 100 * recall_at_k(s, p, k, order) <= bounds["highest"] + 1e-9
            changed = query_hits(s, p, k, "topk") != query_hits(s, p, k, "stable")
            assert changed.sum() <= bounds["tie_dependent"]


def test_topk_ranking_does_not_depend_on_the_row_chunk(monkeypatch):
    import remoteclip.evaluate.retrieval as retrieval

    images, texts, owner = planted_duplicates(0, n_images=80)
    whole = retrieval_metrics(images, texts, owner)
    monkeypatch.setattr(retrieval, "_ROWS_PER_CHUNK", 7)
    assert retrieval_metrics(images, texts, owner) == whole


def test_identical_caption_embeddings_are_refused():
    images = np.eye(3)
    with pytest.raises(ValueError, match="identical caption embeddings"):
        retrieval_metrics(images, np.ones((6, 3)), np.array([0, 0, 1, 1, 2, 2]))
