"""Combining ranked hit lists: union (best score per passage), reciprocal-rank fusion, and z-score fusion.

RRF score of a passage = Σ_lists weight / (k + rank), with **1-based** ranks (the first hit has rank 1), as
in Cormack et al. (2009). Each list is deduplicated by passage id before fusing, so a passage repeated
within one list counts once, at its best rank. The fused output's ``Hit.rank`` is 0-based like every hit list
(``Hit.score`` is the fused score). This is the project's one RRF: hybrid dense+BM25 search and the query
strategies both call it, with the constant :data:`clinrag.core.defaults.RRF_K` unless told otherwise.

Z-score fusion (hybrid search's default, :data:`clinrag.core.defaults.HYBRID_FUSION`) standardises each list's
scores (mean 0, standard deviation 1 over that list) and adds them with ``weights``; a passage missing from a list
gets that list's lowest standardised score. Unlike RRF it keeps *how much* better the first hit is: a BM25 hit
that matches a research question's title word for word stands far above the rest and wins, where RRF would only
see "rank 1" (measured in docs/retrieval.md: PubMedQA dev MRR@10 0.967 vs 0.950 for RRF at equal weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clinrag.core.defaults import RRF_K
from clinrag.core.types import Hit, Query


def dedupe(hits: Sequence[Hit]) -> list[Hit]:
    """Keep each passage once, at its first (best-ranked) occurrence."""
    seen: set[str] = set()
    out = []
    for h in hits:
        if h.id not in seen:
            seen.add(h.id)
            out.append(h)
    return out


def _reranked(scored: dict[str, tuple[float, Hit]], k: int | None) -> list[Hit]:
    ordered = sorted(scored.values(), key=lambda t: (-t[0], t[1].id))
    if k is not None:
        ordered = ordered[:k]
    return [Hit(h.passage, s, r) for r, (s, h) in enumerate(ordered)]


def union(lists: Sequence[Sequence[Hit]], k: int | None = None) -> list[Hit]:
    """Merge lists keeping each passage's best score."""
    best: dict[str, tuple[float, Hit]] = {}
    for hits in lists:
        for h in hits:
            if h.id not in best or h.score > best[h.id][0]:
                best[h.id] = (h.score, h)
    return _reranked(best, k)


def rrf(lists: Sequence[Sequence[Hit]], k: int | None = None, *, rrf_k: int = RRF_K,
        weights: Sequence[float] | None = None) -> list[Hit]:
    """Reciprocal-rank fusion with 1-based ranks; ``weights`` (one per list) default to 1."""
    if weights is not None and len(weights) != len(lists):
        raise ValueError(f"got {len(weights)} weights for {len(lists)} ranked lists")
    fused: dict[str, tuple[float, Hit]] = {}
    for li, hits in enumerate(lists):
        w = 1.0 if weights is None else float(weights[li])
        for rank, h in enumerate(dedupe(hits), start=1):
            prev = fused.get(h.id, (0.0, h))
            fused[h.id] = (prev[0] + w / (rrf_k + rank), prev[1])
    return _reranked(fused, k)


def zscore(lists: Sequence[Sequence[Hit]], k: int | None = None, *,
           weights: Sequence[float] | None = None) -> list[Hit]:
    """Weighted sum of per-list standardised scores; absent from a list = that list's minimum."""
    if weights is not None and len(weights) != len(lists):
        raise ValueError(f"got {len(weights)} weights for {len(lists)} ranked lists")
    per_list: list[dict[str, float]] = []
    first: dict[str, Hit] = {}
    for hits in lists:
        hits = dedupe(hits)
        scores = [h.score for h in hits]
        mean = sum(scores) / len(scores) if scores else 0.0
        std = (sum((s - mean) ** 2 for s in scores) / len(scores)) ** 0.5 if scores else 0.0
        per_list.append({h.id: (h.score - mean) / std if std > 0 else 0.0 for h in hits})
        for h in hits:
            first.setdefault(h.id, h)
    floors = [min(z.values()) if z else 0.0 for z in per_list]
    fused: dict[str, tuple[float, Hit]] = {}
    for pid, hit in first.items():
        total = 0.0
        for li, z in enumerate(per_list):
            w = 1.0 if weights is None else float(weights[li])
            total += w * z.get(pid, floors[li])
        fused[pid] = (total, hit)
    return _reranked(fused, k)


def fuse(lists: Sequence[Sequence[Hit]], method: str, k: int | None = None, *, rrf_k: int = RRF_K,
         weights: Sequence[float] | None = None) -> list[Hit]:
    """Combine ranked lists by ``method`` (``union``, ``rrf`` or ``zscore``); the fused hits carry 0-based ``rank``."""
    if method == "union":
        return union(lists, k)
    if method == "rrf":
        return rrf(lists, k, rrf_k=rrf_k, weights=weights)
    if method == "zscore":
        return zscore(lists, k, weights=weights)
    raise ValueError(f"unknown fusion {method!r} (valid: union, rrf, zscore)")


def retrieve_fused(retriever: Any, queries: Sequence[Query], k: int, method: str = "union", *,
                   rrf_k: int = RRF_K) -> list[Hit]:
    """The top ``k`` passages for one sub-question's queries: one search, fused when there are several queries.

    The graph's ``retrieve`` node and fine-tuning's example builder both call this, so a model is trained on
    passages found exactly as at inference.
    """
    lists = retriever.retrieve(list(queries), k)
    hits = lists[0] if len(lists) == 1 else fuse(lists, method, k, rrf_k=rrf_k)
    return list(hits[:k])
