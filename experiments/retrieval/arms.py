"""Retrieval arms scored per question with the project's metrics, and their paired bootstrap comparisons.

An arm maps a case to one ranked list of passage ids per question. The default pipeline's arm runs the real
code path of ``clinrag answer`` / ``evaluate``: the strategy's ``translate``, then ``retrieve_fused`` per
sub-question exactly as the graph's retrieve node calls it, then the evaluator's ``ranked_passages`` merge.
The per-question baselines embed each question as written (like ``index evaluate``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
from clinrag.core.cases import Case
from clinrag.core.defaults import TOP_K
from clinrag.core.text import has_pronoun, topical_words, truncate_words
from clinrag.core.types import Query
from clinrag.evaluation.bootstrap import paired_bootstrap
from clinrag.evaluation.scoring import ranked_passages
from clinrag.plugins.strategies.decomposition import DecompositionStrategy
from clinrag.retrieval.fusion import retrieve_fused
from clinrag.retrieval.metrics import hit_at_k, mrr_at_k

Ranker = Callable[[Sequence[Case]], list[list[list[str]]]]  # cases -> per case, per question, ranked ids


def doc_ids(hits: Sequence[Any]) -> list[str]:
    return [str(h.passage.metadata.get("doc_id", h.id)) for h in hits]


def per_question(retriever: Any, k: int = 10) -> Ranker:
    """Each question as written is one query; all questions of all given cases in one retrieve call."""
    def rank(cases: Sequence[Case]) -> list[list[list[str]]]:
        rows = iter(retriever.retrieve([Query(q) for c in cases for q in c.questions], k))
        return [[doc_ids(next(rows)) for _ in c.questions] for c in cases]
    return rank


def old_query_text(case: Case, text: str) -> str:
    """The query text of the decomposition strategy before this change (scenario appended to any question with
    fewer than two topical words), reproduced to measure what the new rule changed."""
    if len(topical_words(text)) < 2 or has_pronoun(text):
        return f"{text} {truncate_words(case.clinical_scenario, 180)}"
    return text


def _translated(case: Case, *, old_text: bool, contrast: bool) -> Any:
    translation = DecompositionStrategy().translate(case)
    if old_text or not contrast:
        translation.sub_questions = [
            replace(sq, queries=tuple(replace(q, text=old_query_text(case, sq.text) if old_text else q.text,
                                              contrast=q.contrast if contrast else ()) for q in sq.queries))
            for sq in translation.sub_questions]
    return translation


def _merged(case: Case, subs: Sequence[Any], hit_lists: Sequence[Sequence[Any]]) -> list[list[str]]:
    """The evaluator's per-question merge (``ranked_passages``) of the sub-questions' hit lists."""
    answers = [SimpleNamespace(sub_questions=[]) for _ in case.questions]
    for sq, hits in zip(subs, hit_lists):
        retrieved = [SimpleNamespace(id=h.id, score=h.score, doc_id=h.passage.metadata.get("doc_id")) for h in hits]
        answers[sq.question_index].sub_questions.append(SimpleNamespace(retrieved=retrieved))
    return [ranked_passages(a) for a in answers]


def pipeline(retriever: Any, *, k: int = TOP_K, old_text: bool = False, contrast: bool = True,
             diversify: float | None = None, index: Any = None, batched: bool = True) -> Ranker:
    """The default pipeline: decomposition -> retrieve_fused per sub-question -> ranked_passages.

    ``batched=False`` is the graph's exact call pattern (one ``retrieve_fused`` call per sub-question, used for
    timing); ``batched=True`` sends every sub-question of every case in one retrieve call, which ranks each query
    identically (searches are per query) in a fraction of the time (used for quality; the script checks the two
    agree). ``old_text``: the old query-text rule; ``contrast=False``: no sibling texts; ``diversify``: drop a
    hit whose stored vector has cosine >= this with a higher-ranked hit, refilling from 2k candidates.
    """
    depth = 2 * k if diversify else k

    def finish(hits: Sequence[Any]) -> list[Any]:
        return near_duplicates_removed(hits, index, diversify)[:k] if diversify else list(hits)[:k]

    def rank(cases: Sequence[Case]) -> list[list[list[str]]]:
        translations = [_translated(c, old_text=old_text, contrast=contrast) for c in cases]
        if not batched:
            return [_merged(c, t.sub_questions, [finish(retrieve_fused(retriever, sq.queries, depth, t.fusion,
                                                                       rrf_k=t.rrf_k)) for sq in t.sub_questions])
                    for c, t in zip(cases, translations)]
        if any(len(sq.queries) != 1 for t in translations for sq in t.sub_questions):
            raise ValueError("batched ranking assumes one query per sub-question (decomposition)")
        rows = iter(retriever.retrieve([sq.queries[0] for t in translations for sq in t.sub_questions], depth))
        return [_merged(c, t.sub_questions, [finish(next(rows)) for _ in t.sub_questions])
                for c, t in zip(cases, translations)]
    return rank


def near_duplicates_removed(hits: Sequence[Any], index: Any, threshold: float) -> list[Any]:
    from clinrag.retrieval.contrast import stored_vectors

    rows = {p.id: i for i, p in enumerate(index.passages)} if not index._rows else index._rows
    vecs = stored_vectors(index.faiss_index, [rows[h.id] for h in hits])
    kept: list[int] = []
    for i in range(len(hits)):
        if all(float(vecs[i] @ vecs[j]) < threshold for j in kept):
            kept.append(i)
    return [hits[i] for i in kept]


def score(cases: Sequence[Case], ranked: Sequence[list[list[str]]]) -> dict[str, Any]:
    """Per-case lists of per-question hit@5 and MRR@10 (questions with gold evidence)."""
    hits, mrrs = [], []
    for case, per_q in zip(cases, ranked):
        golds = case.evidence or [[]] * case.n_questions
        hits.append([hit_at_k(r, g, 5) for r, g in zip(per_q, golds) if g])
        mrrs.append([mrr_at_k(r, g, 10) for r, g in zip(per_q, golds) if g])
    return {"hit@5": hits, "mrr@10": mrrs}


def seconds_per_case(cases: Sequence[Case], rankers: dict[str, Ranker], clear: Callable[[], None]) -> dict:
    """Cold seconds per case for each ranker (query cache emptied before each case and arm; arms interleaved)."""
    out: dict[str, list[float]] = {n: [] for n in rankers}
    for case in cases:
        for name, rank in rankers.items():
            clear()
            start = time.perf_counter()
            rank([case])
            out[name].append(time.perf_counter() - start)
    return {n: round(float(np.mean(v)), 4) if v else None for n, v in out.items()}


def summary(scored: dict[str, Any]) -> dict[str, float]:
    flat = {m: [x for case in scored[m] for x in case] for m in ("hit@5", "mrr@10")}
    return {"questions": len(flat["hit@5"]), "hit@5": round(float(np.mean(flat["hit@5"])), 4),
            "mrr@10": round(float(np.mean(flat["mrr@10"])), 4)}


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Paired (case-clustered) bootstrap CI of a - b per metric."""
    return {m: paired_bootstrap(a[m], b[m]).as_dict() for m in ("hit@5", "mrr@10")}
