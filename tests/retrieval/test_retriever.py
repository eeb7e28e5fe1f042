"""IndexRetriever: batched equals one-at-a-time, modes, filters, embed_texts averaging, agent wiring."""

from __future__ import annotations

import numpy as np
import pytest
from clinrag.core.errors import ClinragError
from clinrag.core.types import Query
from clinrag.retrieval.retriever import IndexRetriever

QUESTIONS = [Query("How is hypertension treated first line?"), Query("What does ST elevation in II, III, aVF mean?"),
             Query("Which antibiotic for community-acquired pneumonia?")]


@pytest.fixture(scope="module")
def retriever(small_index_dir, embedder):
    return IndexRetriever(small_index_dir, embedder=embedder)


def ids(rows):
    return [[h.id for h in row] for row in rows]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_batched_equals_one_query_at_a_time(retriever, mode):
    batched = retriever.retrieve(QUESTIONS, 4, mode=mode)
    single = [retriever.retrieve([q], 4, mode=mode)[0] for q in QUESTIONS]
    assert ids(batched) == ids(single)
    for a, b in zip(batched, single):
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=2e-3)


def test_mode_and_filters_set_on_the_retriever(small_index_dir, embedder, retriever):
    bm = IndexRetriever(small_index_dir, embedder=embedder, mode="bm25", filters={"source": "even"})
    rows = bm.retrieve(QUESTIONS, 3)
    assert ids(rows) == ids(retriever.retrieve(QUESTIONS, 3, mode="bm25", filters={"source": "even"}))
    assert all(h.passage.metadata["source"] == "even" for row in rows for h in row)
    assert retriever.retrieve([], 3) == []
    with pytest.raises(ClinragError, match="valid: auto, dense, bm25, hybrid"):
        IndexRetriever(small_index_dir, mode="splade")


def test_embed_texts_are_averaged_and_renormalised(retriever, embedder):
    q = Query("hypertension", kind="hyde", embed_texts=("hypertension treatment", "ACE inhibitors lower pressure"))
    vec = retriever.embed([q])[0]
    parts = embedder.encode_queries(list(q.embed_texts))
    mean = parts.mean(axis=0)
    np.testing.assert_allclose(vec, mean / np.linalg.norm(mean), atol=1e-5)
    assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)


def test_default_embedder_follows_the_manifest(small_index_dir):
    r = IndexRetriever(small_index_dir)
    assert r.embedder.name == "all-MiniLM-L6-v2" and r.embedder.dimension == 384


def test_build_agent_passes_the_retrieval_mode(small_index_dir):
    from clinrag.agent.run import build_agent

    agent = build_agent(small_index_dir, retrieval_mode="hybrid")
    assert agent.context.retriever.mode.value == "hybrid"
    with pytest.raises(ClinragError, match="valid: auto, dense, bm25, hybrid"):
        build_agent(small_index_dir, retrieval_mode="colbert")
