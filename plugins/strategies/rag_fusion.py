"""``rag_fusion``: several rewrites of each sub-question, their rankings fused by reciprocal-rank fusion.

Like ``multi_query`` but the hit lists are combined by rank, not score: a passage found by several rewrites
rises to the top (RRF score = sum over lists of 1/(rrf_k + rank), ranks 1-based). Pick it when you want the
passages that many phrasings agree on — more robust to one odd rewrite than a score union, since cosine scores
of different queries are not comparable. ``rrf_k`` (default :data:`~clinrag.core.defaults.RRF_K`, 60 as in
Cormack et al. 2009) damps the weight of the top ranks: smaller values trust each list's first hits more. One
LLM call per sub-question.
"""

from __future__ import annotations

from typing import ClassVar

from clinrag.core.defaults import RRF_K

from .base import int_option
from .expansion import ExpandingStrategy
from .multi_query import MultiQueryStrategy


class RagFusionStrategy(MultiQueryStrategy):
    name: ClassVar[str] = "rag_fusion"
    description: ClassVar[str] = ("n LLM rewrites per sub-question plus the original, fused by reciprocal-rank "
                                  "fusion (rrf_k configurable). For consensus ranking across phrasings.")
    fusion: ClassVar[str] = "rrf"  # the rest (LLM calls, query kind, prompt, parsing) as multi_query

    def __init__(self, *, n: int = 4, max_new_tokens: int = 150, rrf_k: int = RRF_K) -> None:
        ExpandingStrategy.__init__(self, max_new_tokens=max_new_tokens, rrf_k=rrf_k)
        self.n = int_option(self.name, "n", n, minimum=1)
