"""Retrieval metrics on hand-computed examples."""

import math

import pytest
from clinrag.retrieval.metrics import hit_at_k, mrr_at_k, ndcg_at_k, recall_at_k

RANKED = ["a", "b", "a", "c", "d", "e"]  # "a" repeated: deduplicated to a, b, c, d, e


def test_hit_at_k():
    assert hit_at_k(RANKED, {"c"}, 3) == 1.0  # dedup puts c at rank 3
    assert hit_at_k(RANKED, {"d"}, 3) == 0.0


def test_recall_at_k():
    assert recall_at_k(RANKED, {"b", "d", "z"}, 4) == pytest.approx(2 / 3)
    assert recall_at_k(RANKED, {"a"}, 1) == 1.0


def test_mrr_at_k():
    assert mrr_at_k(RANKED, {"c", "e"}) == pytest.approx(1 / 3)
    assert mrr_at_k(RANKED, {"e"}, k=4) == 0.0


def test_ndcg_at_k():
    # relevant at ranks 2 and 4; ideal puts 2 relevant at ranks 1 and 2
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(RANKED, {"b", "d"}, 10) == pytest.approx(expected)
    assert ndcg_at_k(["x", "y"], {"x"}, 10) == 1.0


def test_empty_gold_and_bad_k_are_errors():
    with pytest.raises(ValueError, match="not applicable"):
        hit_at_k(RANKED, [], 5)
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(RANKED, {"a"}, 0)
