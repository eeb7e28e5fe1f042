"""Token-aware chunking with the real MiniLM tokenizer: window sizes, overlap, exact substrings, stable ids."""

from __future__ import annotations

import pytest
from clinrag.core.errors import ClinragError
from clinrag.core.types import Passage
from clinrag.retrieval.chunking import ChunkSpec, chunk_passage, chunk_passages


@pytest.fixture(scope="module")
def tokenizer(embedder):
    return embedder.tokenizer


def long_doc() -> Passage:
    words = " ".join(f"word{i} alpha beta." for i in range(120))
    return Passage("doc-1", words, "Long doc", {"source": "test"})


def ntok(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_short_document_keeps_its_id(tokenizer):
    p = Passage("short", "Aspirin is an antiplatelet drug.", "t")
    assert chunk_passage(p, tokenizer, ChunkSpec(64, 8)) == [p]
    assert chunk_passage(long_doc(), tokenizer, ChunkSpec()) == [long_doc()]  # tokens=0: chunking off


def test_windows_respect_size_overlap_and_are_substrings(tokenizer):
    doc = long_doc()
    total = ntok(tokenizer, doc.text)
    chunks = chunk_passage(doc, tokenizer, ChunkSpec(64, 16))
    assert len(chunks) == 1 + -(-(total - 64) // (64 - 16))  # ceil((total - window) / step) + 1
    assert [c.id for c in chunks] == [f"doc-1#{i}" for i in range(len(chunks))]
    for i, c in enumerate(chunks):
        assert c.text == doc.text[c.metadata["char_start"]:c.metadata["char_start"] + len(c.text)]
        assert ntok(tokenizer, c.text) <= 64
        assert c.metadata["doc_id"] == "doc-1" and c.metadata["chunk"] == i and c.metadata["source"] == "test"
        assert c.title == "Long doc"
    # neighbouring windows share text (the overlap), and together they cover the document's end
    assert chunks[1].metadata["char_start"] < chunks[0].metadata["char_start"] + len(chunks[0].text)
    assert doc.text.endswith(chunks[-1].text)


def test_chunk_ids_are_stable_across_runs(tokenizer):
    docs = [long_doc(), Passage("short", "Short text.")]
    first = chunk_passages(docs, tokenizer, ChunkSpec(50, 10))
    second = chunk_passages(docs, tokenizer, ChunkSpec(50, 10))
    assert [(c.id, c.text) for c in first] == [(c.id, c.text) for c in second]
    assert first[-1].id == "short"


def test_bad_specs_are_clear_errors():
    with pytest.raises(ClinragError, match="must be smaller than --chunk-tokens"):
        ChunkSpec(10, 10)
    with pytest.raises(ClinragError, match=">= 0"):
        ChunkSpec(-1, 0)
