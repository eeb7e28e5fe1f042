"""The retriever the agent calls: batched queries in, ranked passages out.

All queries of a call are embedded in ONE encode call and searched in ONE FAISS (and one BM25) call: a case's
sub-questions cost one batch, not one round trip each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from clinrag.core.defaults import RETRIEVAL_MODE, RRF_K
from clinrag.core.types import Hit, Query

from .store import RetrievalMode


@runtime_checkable
class Retriever(Protocol):
    def retrieve(self, queries: Sequence[Query], k: int) -> list[list[Hit]]:
        """Top-``k`` hits for each query, in the same order as ``queries``."""
        ...


class IndexRetriever:
    """Retrieval over a saved index folder (or a loaded :class:`PassageIndex`); both load on first use.

    ``mode``: ``dense`` | ``bm25`` | ``hybrid`` (RRF of both with ``rrf_k``, 1-based ranks, optional
    ``weights`` = (dense, bm25)). ``filters``: metadata that every hit must match, e.g. ``{"source": "MedQuAD"}``.
    """

    def __init__(self, index_dir: str | Path | Any, *, embedder: Any = None, mode: str | RetrievalMode = RETRIEVAL_MODE,
                 filters: Mapping[str, Any] | None = None, rrf_k: int = RRF_K,
                 weights: Sequence[float] | None = None, depth: int | None = None) -> None:
        self._index = None if isinstance(index_dir, (str, Path)) else index_dir
        self.index_dir = Path(index_dir) if isinstance(index_dir, (str, Path)) else None
        self._embedder = embedder
        self.mode = RetrievalMode.parse(mode)
        self.filters = dict(filters or {})
        self.rrf_k, self.weights, self.depth = rrf_k, weights, depth

    @cached_property
    def index(self) -> Any:
        if self._index is not None:
            return self._index
        from .store import PassageIndex

        return PassageIndex.load(self.index_dir)

    @cached_property
    def embedder(self) -> Any:
        """The index's embedder (same name and prefixes), unless one was given.

        Precision is ``auto`` for queries whatever the build used: bf16 and fp32 vectors agree to cosine ~0.99999.
        """
        if self._embedder is not None:
            self.index.check_embedder(self._embedder)
            return self._embedder
        from .embedder import SentenceTransformerEmbedder

        cfg = self.index.embedder_config
        return SentenceTransformerEmbedder(cfg["name"], query_prefix=cfg.get("query_prefix", ""),
                                           passage_prefix=cfg.get("passage_prefix", ""))

    def embed(self, queries: Sequence[Query]) -> np.ndarray:
        """One encode call for all queries; a query with ``embed_texts`` gets their re-normalised mean."""
        texts: list[str] = []
        spans: list[tuple[int, int]] = []
        for q in queries:
            parts = list(q.embed_texts) or [q.text]
            spans.append((len(texts), len(texts) + len(parts)))
            texts.extend(parts)
        vecs = self.embedder.encode_queries(texts)
        out = np.stack([vecs[a:b].mean(axis=0) for a, b in spans]) if spans else vecs
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)

    def retrieve(self, queries: Sequence[Query], k: int, *, mode: str | RetrievalMode | None = None,
                 filters: Mapping[str, Any] | None = None) -> list[list[Hit]]:
        """Top-``k`` hits per query (``mode``/``filters`` override the retriever's for this call)."""
        if not queries:
            return []
        mode = self.mode if mode is None else RetrievalMode.parse(mode)
        vectors = self.embed(queries) if mode is not RetrievalMode.bm25 else None
        return self.index.search(k=k, mode=mode, vectors=vectors, texts=[q.text for q in queries],
                                 filters=self.filters if filters is None else filters, rrf_k=self.rrf_k,
                                 weights=self.weights, depth=self.depth)
