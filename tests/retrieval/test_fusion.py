"""RRF maths on hand-checked rankings (1-based ranks), weights, dedupe, and union."""

from __future__ import annotations

import pytest
from clinrag.core.types import Hit, Passage
from clinrag.retrieval.fusion import dedupe, fuse, rrf, union


def hits(*ids: str) -> list[Hit]:
    return [Hit(Passage(i, f"text {i}"), score=1.0 - r / 10, rank=r) for r, i in enumerate(ids)]


def test_rrf_hand_computed():
    # a: 1/(60+1) + 1/(60+2); b: 1/(60+2) + 1/(60+3); c: 1/(60+3); d: 1/(60+1)
    fused = rrf([hits("a", "b", "c"), hits("d", "a", "b")], rrf_k=60)
    scores = {h.id: h.score for h in fused}
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 63)
    assert scores["c"] == pytest.approx(1 / 63)
    assert scores["d"] == pytest.approx(1 / 61)
    assert [h.id for h in fused] == ["a", "b", "d", "c"]
    assert [h.rank for h in fused] == [0, 1, 2, 3]  # output ranks are 0-based like every hit list


def test_rrf_small_k_and_weights():
    # rrf_k=1, weights (2, 1): x = 2/(1+1) + 1/(1+2) = 1.333; y = 2/(1+2) + 1/(1+1) = 1.1667
    fused = rrf([hits("x", "y"), hits("y", "x")], rrf_k=1, weights=[2.0, 1.0])
    scores = {h.id: h.score for h in fused}
    assert scores["x"] == pytest.approx(2 / 2 + 1 / 3)
    assert scores["y"] == pytest.approx(2 / 3 + 1 / 2)
    assert [h.id for h in fused] == ["x", "y"]
    with pytest.raises(ValueError, match="2 weights for 1"):
        rrf([hits("x")], weights=[1.0, 1.0])


def test_rrf_dedupes_within_a_list_before_fusing():
    # "a" twice in list 0 counts once, at rank 1; "b" is then rank 2 (not 3)
    fused = rrf([hits("a", "a", "b")], rrf_k=60)
    assert {h.id: h.score for h in fused} == pytest.approx({"a": 1 / 61, "b": 1 / 62})
    assert [h.id for h in dedupe(hits("a", "b", "a"))] == ["a", "b"]


def test_rrf_top_k_and_tie_break_by_id():
    fused = rrf([hits("b"), hits("a")], k=1)
    assert [h.id for h in fused] == ["a"]  # equal scores: id order, deterministic


def test_union_keeps_best_score_and_fuse_dispatch():
    lists = [[Hit(Passage("a", "t"), 0.2), Hit(Passage("b", "t"), 0.9)], [Hit(Passage("a", "t"), 0.5)]]
    assert [(h.id, h.score) for h in union(lists)] == [("b", 0.9), ("a", 0.5)]
    assert fuse(lists, "union", 1)[0].id == "b"
    assert [h.id for h in fuse([hits("a", "b"), hits("b")], "rrf", weights=[1.0, 0.0])] == ["a", "b"]
    with pytest.raises(ValueError, match="valid: union, rrf"):
        fuse(lists, "max")
