"""A subset index for quick evaluations: the gold evidence of the evaluated cases plus N other passages.

Embedding the full 29k-passage corpus takes a while on CPU; retrieval metrics on a subset are optimistic
(fewer distractors) but the harness, the arms and their relative ordering can be checked in a minute. The
extra passages are a seeded random sample, so the same command rebuilds the same index.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clinrag.core.cases import Case
from clinrag.core.defaults import SUBSET_DISTRACTORS
from clinrag.core.errors import ClinragError


def subset_passages(cases: Sequence[Case], corpus: str | Path | Sequence[str | Path], extra: int, *,
                    seed: int = 0) -> list[Any]:
    """Gold passages of ``cases`` (all of them must exist in the corpus) plus ``extra`` seeded others."""
    from clinrag.retrieval.passages import iter_passages

    sources = [corpus] if isinstance(corpus, (str, Path)) else list(corpus)
    gold = {pid for c in cases for ev in (c.evidence or []) for pid in ev}
    chosen, others = [], []
    for p, _where in iter_passages(sources):  # (passage, "file:line") pairs
        (chosen if p.id in gold else others).append(p)
    missing = gold - {p.id for p in chosen}
    if missing:
        sample = ", ".join(sorted(missing)[:5])
        raise ClinragError(f"{len(missing)} gold evidence passage(s) are not in the corpus (e.g. {sample})")
    rng = random.Random(seed)
    chosen += rng.sample(others, min(extra, len(others)))
    return chosen


def build_subset_index(cases: Sequence[Case], corpus: str | Path | Sequence[str | Path], out: str | Path, *,
                       extra: int = SUBSET_DISTRACTORS, seed: int = 0, embedder: Any = None,
                       show_progress: bool = True) -> Path:
    """Embed :func:`subset_passages` with the default embedder (or ``embedder``) and save an index to ``out``."""
    from clinrag.retrieval.embedder import SentenceTransformerEmbedder
    from clinrag.retrieval.store import PassageIndex

    passages = subset_passages(cases, corpus, extra, seed=seed)
    index = PassageIndex.build(passages, embedder or SentenceTransformerEmbedder(), show_progress=show_progress)
    return index.save(out)
