"""BM25 over the index's passages, with ``bm25s`` (sparse, numpy-saved, no pickle) and a Snowball stemmer.

Rows are passage positions, the same as the FAISS rows. BM25's IDF is corpus-wide, so adding passages rebuilds
the BM25 state (seconds for tens of thousands of passages; only dense vectors are expensive to recompute).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

BM25_PARAMS = {"k1": 1.5, "b": 0.75, "method": "lucene", "stopwords": "en", "stemmer": "english"}


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer(BM25_PARAMS["stemmer"])


def _tokenize(texts: Sequence[str], *, return_ids: bool, show_progress: bool = False) -> Any:
    import bm25s

    return bm25s.tokenize(list(texts), stopwords=BM25_PARAMS["stopwords"], stemmer=_stemmer(),
                          return_ids=return_ids, show_progress=show_progress)


@dataclass
class BM25Index:
    """A ``bm25s.BM25`` over ``n`` documents (row i = passage i)."""

    model: Any
    n: int

    @classmethod
    def build(cls, texts: Sequence[str], *, show_progress: bool = False) -> BM25Index:
        import bm25s

        model = bm25s.BM25(k1=BM25_PARAMS["k1"], b=BM25_PARAMS["b"], method=BM25_PARAMS["method"])
        model.index(_tokenize(texts, return_ids=True, show_progress=show_progress), show_progress=show_progress)
        return cls(model, len(texts))

    def search(self, queries: Sequence[str], k: int, mask: np.ndarray | None = None) -> list[list[tuple[int, float]]]:
        """Top-``k`` (row, score) per query; rows scoring 0 (no query term, or filtered out) are dropped."""
        k = min(k, self.n)
        if k <= 0 or not queries:
            return [[] for _ in queries]
        tokens = _tokenize(queries, return_ids=False)
        weight_mask = None if mask is None else mask.astype(np.float32)
        docs, scores = self.model.retrieve(tokens, k=k, show_progress=False, weight_mask=weight_mask)
        return [[(int(d), float(s)) for d, s in zip(drow, srow) if s > 0] for drow, srow in zip(docs, scores)]

    def save(self, folder: Path) -> None:
        self.model.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, n: int) -> BM25Index:
        import bm25s

        model = bm25s.BM25.load(str(folder), allow_pickle=False, show_progress=False)
        return cls(model, n)

    @staticmethod
    def params() -> dict[str, Any]:
        return dict(BM25_PARAMS, library="bm25s")
