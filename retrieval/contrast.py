"""Sibling contrast: re-rank a question's dense hits against the other questions of the same case.

A multi-question case asks about one condition from several sides ("What are the symptoms of X?", "How to
diagnose X?", "What causes X?"). A general-purpose embedder ranks every passage about X high for every one of
these, so the "symptoms of X" page often crowds the top 5 of "How to diagnose X?". The case itself says which
question a passage serves best: if a sibling question matches a passage better than this question does, the
passage more likely belongs to the sibling. Each dense candidate's score becomes

    s_own(p) - weight * max(0, max_j s_sibling_j(p) - s_own(p))

(cosines). A passage this question matches best keeps its score; one a sibling matches better is demoted in
proportion to the gap. Nothing changes for single-question cases or passages no sibling prefers.
Measured on the MedQuAD multi-question dev set (full corpus): see docs/retrieval.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from clinrag.core.types import Hit


def contrast_scores(own: np.ndarray, siblings: np.ndarray, weight: float) -> np.ndarray:
    """``own - weight * max(0, max(siblings) - own)`` row-wise; ``siblings`` is (candidates, n_siblings)."""
    if siblings.size == 0 or weight == 0:
        return own
    gap = np.maximum(siblings.max(axis=1) - own, 0.0)
    return own - weight * gap


def rerank(hits: Sequence[Hit], passage_vectors: np.ndarray, sibling_vectors: np.ndarray, weight: float,
           k: int | None = None) -> list[Hit]:
    """``hits`` (dense, score = cosine to the own query) re-ranked by :func:`contrast_scores`.

    ``passage_vectors[i]`` is hit i's stored vector, ``sibling_vectors`` the (normalised) sibling query vectors.
    Ties keep the original order; the returned hits carry the contrasted score and a new 0-based rank.
    """
    if not hits or sibling_vectors.size == 0 or weight == 0:
        return list(hits)[:k]
    own = np.asarray([h.score for h in hits], dtype=np.float32)
    scores = contrast_scores(own, passage_vectors @ sibling_vectors.T, weight)
    order = np.argsort(-scores, kind="stable")
    if k is not None:
        order = order[:k]
    return [Hit(hits[i].passage, float(scores[i]), rank) for rank, i in enumerate(order)]


def stored_vectors(faiss_index: Any, rows: Sequence[int]) -> np.ndarray:
    """The stored vectors of ``rows`` (exact for flat and HNSW; IVF-PQ gives its reconstruction)."""
    import faiss

    ids = np.asarray(rows, dtype=np.int64)
    try:
        return np.asarray(faiss_index.reconstruct_batch(ids), dtype=np.float32)
    except RuntimeError:  # IVF keeps no id -> slot map until asked for one
        faiss.extract_index_ivf(faiss_index).make_direct_map()
        return np.asarray(faiss_index.reconstruct_batch(ids), dtype=np.float32)
