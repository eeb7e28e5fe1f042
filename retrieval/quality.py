"""Retrieval quality of an index on case files with gold evidence: hit@5, recall@10, MRR@10 per mode.

Every question of every case is one query (its text as written); its gold set is that question's ``evidence``
ids (questions without evidence are counted and skipped). In a chunked index a chunk counts as its document.
Queries are embedded once (one batched encode) and searched per mode with the retriever's settings; ``seconds``
per mode is search time only, ``embed_seconds`` the shared encode. All questions go through ONE batched retrieve call per
mode. The metric functions are the project's (:mod:`clinrag.retrieval.metrics`), not copies.

Gold ids the index does not hold are counted (``gold_ids``, ``gold_missing``): a case file scored against the
wrong index would otherwise read as a bare 0.000. When none of a file's gold ids is in the index its metrics are
``None`` and the table says so instead of printing zeros.

    clinrag index evaluate INDEX cases/medquad_multi_dev.jsonl cases/pubmedqa_dev.jsonl
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clinrag.core.types import Query

from .store import RetrievalMode

METRICS = ("hit@5", "recall@10", "mrr@10")


def evaluate_cases(retriever: Any, cases_path: str | Path, modes: Sequence[str | RetrievalMode]) -> dict[str, Any]:
    """``{"file", "cases", "questions", "skipped_without_evidence", "embed_seconds", "modes": {mode: {metric: mean,
    "seconds": s}}}`` for one case file; ``retriever`` is an :class:`~clinrag.retrieval.retriever.IndexRetriever`."""
    from clinrag.core.cases import load_cases
    from clinrag.retrieval.metrics import hit_at_k, mrr_at_k, recall_at_k

    queries, golds, skipped = [], [], 0
    cases = load_cases(cases_path)
    for case in cases:
        for i, question in enumerate(case.questions):
            gold = (case.evidence or [[]] * len(case.questions))[i]
            if not gold:
                skipped += 1
                continue
            queries.append(Query(question))
            golds.append(gold)
    known = {str(p.metadata.get("doc_id", p.id)) for p in retriever.index.passages}
    gold_ids = {g for gold in golds for g in gold}
    missing = gold_ids - known
    result: dict[str, Any] = {"file": Path(cases_path).name, "cases": len(cases), "questions": len(queries),
                              "skipped_without_evidence": skipped, "gold_ids": len(gold_ids),
                              "gold_missing": len(missing), "modes": {}}
    modes = [retriever.index.resolve_mode(m) for m in modes]
    if gold_ids and not gold_ids - missing:
        result["modes"] = {m.value: None for m in modes}
        return result
    vectors = None
    if any(m is not RetrievalMode.bm25 for m in modes):  # embed once, shared by dense and hybrid
        start = time.perf_counter()
        vectors = retriever.embed(queries)
        result["embed_seconds"] = round(time.perf_counter() - start, 3)
    texts = [q.text for q in queries]
    for mode in modes:
        start = time.perf_counter()
        hits = retriever.index.search(k=10, mode=mode, vectors=vectors, texts=texts, filters=retriever.filters,
                                      rrf_k=retriever.rrf_k, weights=retriever.weights, depth=retriever.depth,
                                      fusion=retriever.fusion)
        seconds = time.perf_counter() - start
        # A chunk counts as its document: gold evidence names documents (metrics dedupe repeated ids).
        ranked = [[str(h.passage.metadata.get("doc_id", h.id)) for h in row] for row in hits]
        n = max(len(ranked), 1)
        result["modes"][mode.value] = {
            "hit@5": sum(hit_at_k(r, g, 5) for r, g in zip(ranked, golds)) / n,
            "recall@10": sum(recall_at_k(r, g, 10) for r, g in zip(ranked, golds)) / n,
            "mrr@10": sum(mrr_at_k(r, g, 10) for r, g in zip(ranked, golds)) / n,
            "seconds": round(seconds, 3),
        }
    return result


def missing_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """Per case file: how many of its gold ids the index lacks."""
    return [f"{res['file']}: {res.get('gold_missing', 0)} of {res.get('gold_ids', 0)} gold ids are not in the index"
            for res in results]


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    """One row per (case file, mode); a file none of whose gold ids is in the index gets one row saying so."""
    lines = ["| cases | questions | mode | hit@5 | recall@10 | MRR@10 |", "|---|---:|---|---:|---:|---:|"]
    for res in results:
        if res["modes"] and all(m is None for m in res["modes"].values()):
            lines.append(f"| {res['file']} | {res['questions']} | all | no gold passage in this index "
                         f"({res['gold_ids']} gold ids missing): not scored | | |")
            continue
        for mode, m in res["modes"].items():
            lines.append(f"| {res['file']} | {res['questions']} | {mode} | {m['hit@5']:.3f} | {m['recall@10']:.3f} "
                         f"| {m['mrr@10']:.3f} |")
    return "\n".join(lines)
