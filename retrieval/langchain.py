"""A LangChain ``BaseRetriever`` over a clinrag index, so the index plugs into LangChain chains and agents.

    from clinrag.retrieval.langchain import ClinragRetriever
    retriever = ClinragRetriever.from_index("index/", k=5, mode="hybrid")
    docs = retriever.invoke("first-line treatment of hypertension")   # list[Document]

Each ``Document`` has the passage text as ``page_content``, the passage id as ``id``, and ``title``, ``score``,
``rank`` and the passage metadata in ``metadata``. ``batch`` of many queries is one embed + one search call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clinrag.core.defaults import TOP_K
from clinrag.core.types import Hit, Query
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict


def hit_to_document(hit: Hit) -> Document:
    meta = {**hit.passage.metadata, "id": hit.id, "title": hit.passage.title, "score": hit.score, "rank": hit.rank}
    return Document(page_content=hit.passage.text, metadata=meta, id=hit.id)


class ClinragRetriever(BaseRetriever):
    """Wraps an :class:`~clinrag.retrieval.retriever.IndexRetriever` (or anything with ``retrieve``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Any
    k: int = TOP_K

    @classmethod
    def from_index(cls, index_dir: str | Path, *, k: int = TOP_K, **retriever_options: Any) -> ClinragRetriever:
        from .retriever import IndexRetriever

        return cls(retriever=IndexRetriever(index_dir, **retriever_options), k=k)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [hit_to_document(h) for h in self.retriever.retrieve([Query(query)], self.k)[0]]

    def batch(self, inputs: list[Any], config: Any = None, **kwargs: Any) -> list[list[Document]]:  # type: ignore[override]
        """Many queries in one retrieve call (one encode, one search), instead of one call per query."""
        if not all(isinstance(q, str) for q in inputs) or config is not None or kwargs:
            return super().batch(inputs, config, **kwargs)
        hits = self.retriever.retrieve([Query(q) for q in inputs], self.k)
        return [[hit_to_document(h) for h in row] for row in hits]
