"""Retrieval metrics: pure functions over ranked passage ids and a gold set.

Ranked ids are deduplicated (first occurrence kept) before scoring, so a passage retrieved twice cannot count
twice. Ranks are 1-based. Relevance is binary: a passage is relevant when its id is in the gold set (the shared
case files list, per question, the passages any one of which answers it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def _top(ranked: Sequence[str], k: int) -> list[str]:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return list(dict.fromkeys(ranked))[:k]


def _gold(gold: Iterable[str]) -> set[str]:
    g = set(gold)
    if not g:
        raise ValueError("gold set is empty: the metric is not applicable to this question")
    return g


def hit_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    """1.0 if any gold passage is in the top ``k``."""
    g = _gold(gold)
    return float(any(pid in g for pid in _top(ranked, k)))


def recall_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    """Share of the gold passages found in the top ``k``."""
    g = _gold(gold)
    return sum(pid in g for pid in _top(ranked, k)) / len(g)


def mrr_at_k(ranked: Sequence[str], gold: Iterable[str], k: int = 10) -> float:
    """1 / (1-based rank of the first gold passage in the top ``k``), 0 if none."""
    g = _gold(gold)
    for rank, pid in enumerate(_top(ranked, k), start=1):
        if pid in g:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], gold: Iterable[str], k: int = 10) -> float:
    """Binary-relevance nDCG: Σ rel_i / log2(i + 1) over the top ``k``, over the ideal ordering's value."""
    g = _gold(gold)
    dcg = sum(1.0 / math.log2(rank + 1) for rank, pid in enumerate(_top(ranked, k), start=1) if pid in g)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(g), k) + 1))
    return dcg / ideal
