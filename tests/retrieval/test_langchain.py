"""The LangChain BaseRetriever adapter returns the same passages as the clinrag retriever."""

from __future__ import annotations

from clinrag.core.types import Query
from clinrag.retrieval.langchain import ClinragRetriever
from clinrag.retrieval.retriever import IndexRetriever
from langchain_core.retrievers import BaseRetriever


def test_invoke_and_batch_match_the_retriever(small_index_dir, embedder):
    inner = IndexRetriever(small_index_dir, embedder=embedder, mode="hybrid")
    lc = ClinragRetriever(retriever=inner, k=3)
    assert isinstance(lc, BaseRetriever)
    docs = lc.invoke("treatment of high blood pressure")
    hits = inner.retrieve([Query("treatment of high blood pressure")], 3)[0]
    assert [d.id for d in docs] == [h.id for h in hits]
    assert docs[0].page_content == hits[0].passage.text
    assert docs[0].metadata["title"] == hits[0].passage.title and docs[0].metadata["rank"] == 0
    assert docs[0].metadata["source"] in ("odd", "even")
    batch = lc.batch(["treatment of high blood pressure", "ECG in myocardial infarction"])
    assert [d.id for d in batch[0]] == [d.id for d in docs] and len(batch[1]) == 3


def test_from_index(small_index_dir):
    lc = ClinragRetriever.from_index(small_index_dir, k=2, mode="bm25")
    assert len(lc.invoke("aspirin")) <= 2
