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


def scored(*pairs: tuple[str, float]) -> list[Hit]:
    return [Hit(Passage(i, f"text {i}"), score=s, rank=r) for r, (i, s) in enumerate(pairs)]


def test_zscore_hand_computed():
    # dense scores 0.9, 0.7, 0.5: mean 0.7, std 0.1633 -> z = +1.2247, 0, -1.2247
    # bm25 scores 10 (b), 2 (c): mean 6, std 4 -> z = +1, -1; a is absent from bm25 -> its floor, -1
    dense = scored(("a", 0.9), ("b", 0.7), ("c", 0.5))
    sparse = scored(("b", 10.0), ("c", 2.0))
    fused = fuse([dense, sparse], "zscore")
    z = 1.5 ** 0.5
    scores = {h.id: h.score for h in fused}
    assert scores["a"] == pytest.approx(z - 1)
    assert scores["b"] == pytest.approx(0 + 1)
    assert scores["c"] == pytest.approx(-z - 1)
    assert [h.id for h in fused] == ["b", "a", "c"]
    assert [h.rank for h in fused] == [0, 1, 2]


def test_zscore_keeps_the_margin_rrf_forgets():
    # BM25's first hit stands far above the rest; dense barely prefers another passage. RRF sees two "rank 1"s
    # and ties them; z-score fusion follows the list whose first hit is far ahead.
    dense = scored(("x", 0.80), ("y", 0.79), ("z", 0.50))
    sparse = scored(("y", 40.0), ("x", 5.0), ("z", 4.0))
    assert fuse([dense, sparse], "zscore")[0].id == "y"
    assert {h.id for h in fuse([dense, sparse], "rrf")[:2]} == {"x", "y"}


def test_zscore_weights_constant_lists_and_k():
    dense = scored(("a", 0.5), ("b", 0.5))  # std 0: every z is 0, the other list decides
    sparse = scored(("b", 3.0), ("a", 1.0))
    assert [h.id for h in fuse([dense, sparse], "zscore")] == ["b", "a"]
    dense = scored(("a", 0.9), ("b", 0.1))
    sparse = scored(("b", 9.0), ("a", 1.0))
    assert fuse([dense, sparse], "zscore", weights=[3.0, 1.0])[0].id == "a"
    assert fuse([dense, sparse], "zscore", weights=[1.0, 3.0])[0].id == "b"
    assert len(fuse([dense, sparse], "zscore", k=1)) == 1
    with pytest.raises(ValueError, match="2 ranked lists"):
        fuse([dense, sparse], "zscore", weights=[1.0])
    with pytest.raises(ValueError, match="valid: union, rrf, zscore"):
        fuse([dense], "max")
