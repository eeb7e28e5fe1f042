"""Retrieval settings as string enums. Light (no numpy/faiss), so the CLI can use them for its options."""

from __future__ import annotations

from clinrag.core.choices import Choice


class Precision(Choice):
    """Numeric precision used while encoding."""

    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


class IndexType(Choice):
    """The FAISS index: exact ``flat``, ``hnsw``, ``ivf``, ``ivfpq``, or ``auto`` (picked by corpus size)."""

    auto = "auto"
    flat = "flat"
    hnsw = "hnsw"
    ivf = "ivf"
    ivfpq = "ivfpq"


class RetrievalMode(Choice):
    """How passages are ranked: dense vectors, BM25, both fused (hybrid), or ``auto`` (hybrid where the index has
    BM25 state, else dense)."""

    auto = "auto"
    dense = "dense"
    bm25 = "bm25"
    hybrid = "hybrid"

    @classmethod
    def evaluated(cls) -> list[RetrievalMode]:
        """The concrete modes (``auto`` resolves to one of them)."""
        return [m for m in cls if m is not cls.auto]
