"""The retriever the agent calls: batched queries in, ranked passages out."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from clinrag.types import Hit, Query


@runtime_checkable
class Retriever(Protocol):
    def retrieve(self, queries: Sequence[Query], k: int) -> list[list[Hit]]:
        """Top-``k`` hits for each query, in the same order as ``queries``."""
        ...


class IndexRetriever:
    """Dense retrieval over a saved index folder; the index and embedder load on first use."""

    def __init__(self, index_dir: str | Path, *, embedder: Any = None) -> None:
        self.index_dir = Path(index_dir)
        self._embedder = embedder

    @cached_property
    def index(self) -> Any:
        from .store import DenseIndex

        return DenseIndex.load(self.index_dir)

    @cached_property
    def embedder(self) -> Any:
        if self._embedder is not None:
            return self._embedder
        from .embedder import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(self.index.embedder_name)

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

    def retrieve(self, queries: Sequence[Query], k: int) -> list[list[Hit]]:
        if not queries:
            return []
        return self.index.search_vectors(self.embed(queries), k)
