"""A LangChain ``BaseRetriever`` over a clinrag index, so the index plugs into LangChain chains and agents.

    from clinrag.retrieval.langchain import ClinragRetriever
    retriever = ClinragRetriever.from_index("index/", k=5, mode="hybrid")
    docs = retriever.invoke("first-line treatment of hypertension")   # list[Document]
    docs = retriever.invoke("aspirin", k=2, filters={"source": "MedQuAD"}, mode="bm25")   # per call

Each ``Document`` has the passage text as ``page_content``, the passage id as ``id``, and ``title``, ``score``,
``rank`` and the passage metadata in ``metadata``. ``k``, ``filters`` (metadata every hit must match) and
``mode`` set on the retriever are defaults; the same keywords given to ``invoke`` override them for that call.
``batch`` is LangChain's own (one ``invoke`` per query on its thread pool), so every query gets its callback
run and shows up in tracing; a single call for many queries is ``retriever.retriever.retrieve(queries, k)``.
Passes LangChain's standard retriever tests (``tests/retrieval/test_langchain.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clinrag.core.defaults import TOP_K
from clinrag.core.types import Hit, Query
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field


def hit_to_document(hit: Hit) -> Document:
    meta = {**hit.passage.metadata, "id": hit.id, "title": hit.passage.title, "score": hit.score, "rank": hit.rank}
    return Document(page_content=hit.passage.text, metadata=meta, id=hit.id)


class ClinragRetriever(BaseRetriever):
    """Wraps an :class:`~clinrag.retrieval.retriever.IndexRetriever` (or anything with ``retrieve``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Any
    k: int = Field(default=TOP_K, ge=1)
    filters: dict[str, Any] | None = None  # None: the wrapped retriever's own filters
    mode: str | None = None  # None: the wrapped retriever's own mode

    @classmethod
    def from_index(cls, index_dir: str | Path, *, k: int = TOP_K, **retriever_options: Any) -> ClinragRetriever:
        from .retriever import IndexRetriever

        return cls(retriever=IndexRetriever(index_dir, **retriever_options), k=k)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None, filters: Mapping[str, Any] | None = None,
                                mode: str | None = None) -> list[Document]:
        k = self.k if k is None else k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer (got {k!r})")
        options: dict[str, Any] = {}
        if filters is not None or self.filters is not None:
            options["filters"] = dict(filters if filters is not None else self.filters or {})
        if mode is not None or self.mode is not None:
            options["mode"] = mode if mode is not None else self.mode
        return [hit_to_document(h) for h in self.retriever.retrieve([Query(query)], k, **options)[0]]
