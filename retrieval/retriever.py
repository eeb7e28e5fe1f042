"""The retriever the agent calls: batched queries in, ranked passages out.

All queries of a call are embedded in ONE encode call and searched in ONE FAISS (and one BM25) call: a case's
sub-questions cost one batch, not one round trip each. Query vectors are kept in a small per-retriever cache, so
the sibling questions a query is contrasted with (:attr:`Query.contrast`) are encoded once per case, not once
per branch: the graph's retrieve branches of one case share them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from clinrag.core.defaults import HYBRID_FUSION, RETRIEVAL_MODE, RRF_K, SIBLING_CONTRAST
from clinrag.core.types import Hit, Query

from .store import RetrievalMode

#: Query vectors kept per retriever (a few cases' questions; a vector is 1.5 KB).
QUERY_CACHE = 4096


@runtime_checkable
class Retriever(Protocol):
    def retrieve(self, queries: Sequence[Query], k: int) -> list[list[Hit]]:
        """Top-``k`` hits for each query, in the same order as ``queries``."""
        ...


class IndexRetriever:
    """Retrieval over a saved index folder (or a loaded :class:`PassageIndex`); both load on first use.

    ``mode``: ``auto`` (hybrid where the index has BM25, else dense) | ``dense`` | ``bm25`` | ``hybrid`` (dense
    and BM25 fused by ``fusion``: ``zscore`` or ``rrf`` with ``rrf_k``; optional ``weights`` = (dense, bm25)).
    ``contrast``: the sibling-contrast weight applied to queries that carry sibling questions (0: off).
    ``filters``: metadata that every hit must match, e.g. ``{"source": "MedQuAD"}``.
    """

    def __init__(self, index_dir: str | Path | Any, *, embedder: Any = None, mode: str | RetrievalMode = RETRIEVAL_MODE,
                 filters: Mapping[str, Any] | None = None, rrf_k: int = RRF_K,
                 weights: Sequence[float] | None = None, depth: int | None = None, fusion: str = HYBRID_FUSION,
                 contrast: float = SIBLING_CONTRAST) -> None:
        self._index = None if isinstance(index_dir, (str, Path)) else index_dir
        self.index_dir = Path(index_dir) if isinstance(index_dir, (str, Path)) else None
        self._embedder = embedder
        self.mode = RetrievalMode.parse(mode)
        self.filters = dict(filters or {})
        self.rrf_k, self.weights, self.depth, self.fusion = rrf_k, weights, depth, fusion
        if contrast < 0:
            raise ValueError(f"contrast weight must be >= 0, got {contrast}")
        self.contrast = float(contrast)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

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
        embedder = SentenceTransformerEmbedder(cfg["name"], query_prefix=cfg.get("query_prefix", ""),
                                               passage_prefix=cfg.get("passage_prefix", ""))
        self.index.check_embedder(embedder)
        return embedder

    def encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors of ``texts``: the ones not cached are encoded in one call (under a lock, so concurrent branches
        of one case wait for each other's batch instead of encoding the same sibling questions again)."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
            if missing:
                for text, vec in zip(missing, self.embedder.encode_queries(missing)):
                    self._cache[text] = vec
            out = {t: self._cache[t] for t in texts}
            for t in out:
                self._cache.move_to_end(t)
            while len(self._cache) > QUERY_CACHE:
                self._cache.popitem(last=False)
        return out

    def embed(self, queries: Sequence[Query], *, extra: Sequence[str] = ()) -> np.ndarray:
        """One encode call for all queries (and ``extra`` texts, cached for a following call); a query with
        ``embed_texts`` gets their re-normalised mean."""
        parts = [list(q.embed_texts) or [q.text] for q in queries]
        vecs = self.encode([t for p in parts for t in p] + list(extra))
        if not parts:
            return np.zeros((0, 0), dtype=np.float32)
        out = np.stack([np.mean([vecs[t] for t in p], axis=0) for p in parts])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)

    def retrieve(self, queries: Sequence[Query], k: int, *, mode: str | RetrievalMode | None = None,
                 filters: Mapping[str, Any] | None = None) -> list[list[Hit]]:
        """Top-``k`` hits per query (``mode``/``filters`` override the retriever's for this call)."""
        if not queries:
            return []
        mode = self.index.resolve_mode(self.mode if mode is None else mode)
        vectors = contrast = None
        if mode is not RetrievalMode.bm25:
            siblings = [t for q in queries for t in q.contrast] if self.contrast > 0 else []
            vectors = self.embed(queries, extra=siblings)
            if siblings:
                cached = self.encode(siblings)
                contrast = [np.stack([cached[t] for t in q.contrast]) if q.contrast else None for q in queries]
        return self.index.search(k=k, mode=mode, vectors=vectors, texts=[q.text for q in queries],
                                 filters=self.filters if filters is None else filters, rrf_k=self.rrf_k,
                                 weights=self.weights, depth=self.depth, fusion=self.fusion, contrast=contrast,
                                 contrast_weight=self.contrast)
