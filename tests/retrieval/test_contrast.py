"""Sibling contrast: the formula on hand-made vectors, and end to end through a real index and retriever."""

from __future__ import annotations

import numpy as np
import pytest
from clinrag.core.types import Hit, Passage, Query
from clinrag.retrieval.contrast import contrast_scores, rerank, stored_vectors


def test_contrast_scores_penalise_only_what_a_sibling_prefers():
    own = np.array([0.8, 0.6, 0.5], dtype=np.float32)
    siblings = np.array([[0.7, 0.1], [0.9, 0.2], [0.5, 0.4]], dtype=np.float32)
    # row 0: no sibling beats 0.8 -> unchanged; row 1: gap 0.3 -> 0.6 - 2*0.3; row 2: tie -> unchanged
    assert contrast_scores(own, siblings, 2.0) == pytest.approx([0.8, 0.0, 0.5], abs=1e-6)
    assert contrast_scores(own, siblings, 0.0) == pytest.approx(own)
    assert contrast_scores(own, np.zeros((3, 0), dtype=np.float32), 2.0) == pytest.approx(own)


def test_rerank_moves_the_sibling_passage_down():
    # passage "sym" is about symptoms: the question "diagnosis" matches it 0.70, its sibling "symptoms" 0.95
    hits = [Hit(Passage("sym", "s"), 0.70, 0), Hit(Passage("dx", "d"), 0.65, 1)]
    pvecs = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    sibling = np.array([[0.95, 0.2]], dtype=np.float32)
    out = rerank(hits, pvecs, sibling, 2.0)
    assert [h.id for h in out] == ["dx", "sym"]
    assert [h.rank for h in out] == [0, 1]
    assert out[1].score == pytest.approx(0.70 - 2 * 0.25)
    assert rerank(hits, pvecs, sibling, 2.0, k=1)[0].id == "dx"
    assert [h.id for h in rerank(hits, pvecs, np.zeros((0, 2), dtype=np.float32), 2.0)] == ["sym", "dx"]


def test_stored_vectors_read_back_rows(small_index):
    rows = [3, 0, 7]
    assert np.allclose(stored_vectors(small_index.faiss_index, rows), small_index.vectors()[rows])


def test_search_with_contrast_demotes_what_a_sibling_matches_better(small_index, embedder):
    query = "What are the symptoms?"
    sibling = small_index.passages[0].title or small_index.passages[0].text[:80]
    qv, sv = embedder.encode_queries([query]), embedder.encode_queries([sibling])
    plain = small_index.search(k=24, mode="dense", vectors=qv)[0]
    contrasted = small_index.search(k=24, mode="dense", vectors=qv, contrast=[sv], contrast_weight=5.0)[0]
    vecs = small_index.vectors()
    rank = {h.id: r for r, h in enumerate(contrasted)}
    own = {h.id: h.score for h in plain}
    for i, p in enumerate(small_index.passages):
        gap = float(vecs[i] @ sv[0]) - own[p.id]
        expected = own[p.id] - 5.0 * max(gap, 0.0)
        assert contrasted[rank[p.id]].score == pytest.approx(expected, abs=1e-5)
    assert [h.score for h in contrasted] == sorted((h.score for h in contrasted), reverse=True)
    # weight 0, or no sibling vectors: plain dense search
    for kwargs in ({"contrast": [sv], "contrast_weight": 0.0}, {"contrast": [None]}):
        got = small_index.search(k=5, mode="dense", vectors=qv, **kwargs)[0]
        assert [h.id for h in got] == [h.id for h in plain[:5]]


def test_retriever_passes_contrast_and_encodes_each_text_once(small_index, embedder):
    from clinrag.retrieval.retriever import IndexRetriever

    calls: list[list[str]] = []

    class Counting:
        name, query_prefix, passage_prefix = embedder.name, "", ""
        dimension = embedder.dimension

        def encode_queries(self, texts):
            calls.append(list(texts))
            return embedder.encode_queries(texts)

    r = IndexRetriever(small_index, embedder=Counting(), mode="dense")
    qs = ["What causes asthma?", "How is asthma treated?"]
    first = r.retrieve([Query(qs[0], contrast=(qs[1],))], 5)[0]
    second = r.retrieve([Query(qs[1], contrast=(qs[0],))], 5)[0]
    assert calls == [qs]  # the sibling was encoded with the first query and reused by the second branch
    off = IndexRetriever(small_index, embedder=embedder, mode="dense", contrast=0)
    assert [h.id for h in off.retrieve([Query(qs[0], contrast=(qs[1],))], 5)[0]] == \
        [h.id for h in off.retrieve([Query(qs[0])], 5)[0]]
    assert len(first) == len(second) == 5
    with pytest.raises(ValueError, match="contrast weight"):
        IndexRetriever(small_index, contrast=-1)
