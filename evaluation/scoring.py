"""Score one case's response: per-question metric values, plus the case-level fields (summary, structure, cost).

A metric whose reference field is absent for a question is left out of that question's ``metrics`` (not
applicable, never zero). A case that failed scores 0.0 on every metric that applies to it, so a crashing arm
cannot look better by dropping its hard cases; its error is kept in the record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clinrag.core.cases import Case
from clinrag.retrieval import metrics as rm

from . import answer_metrics as am

RETRIEVAL_KEYS = ("hit@5", "recall@10", "mrr@10", "ndcg@10")
ANSWER_KEYS = ("token_f1", "rouge_l", "mcq_accuracy", "numeric_accuracy", "decision_accuracy")


def ranked_passages(question_answer: Any) -> list[str]:
    """The passage ids retrieved for one question, best first, across its sub-questions.

    Each sub-question's ``retrieved`` list is in rank order; sub-questions are merged by best score
    (ties: better rank within its sub-question first), and a passage retrieved for several sub-questions
    keeps its best position only. A chunk counts as its document (``doc_id``), since gold evidence names
    documents.
    """
    best: dict[str, tuple[float, int]] = {}
    for sub in question_answer.sub_questions:
        for rank, src in enumerate(sub.retrieved):
            key, pid = (-src.score, rank), getattr(src, "doc_id", None) or src.id
            if pid not in best or key < best[pid]:
                best[pid] = key
    return [pid for pid, _ in sorted(best.items(), key=lambda item: (item[1], item[0]))]


def strip_citations(answer: str, passage_ids: Sequence[str]) -> str:
    """The answer without its ``[passage-id]`` citation markers, which are provenance, not answer text."""
    for pid in passage_ids:
        answer = answer.replace(f"[{pid}]", " ")
    return " ".join(answer.split())


def retrieval_scores(ranked: Sequence[str], gold: Sequence[str]) -> dict[str, float]:
    return {"hit@5": rm.hit_at_k(ranked, gold, 5), "recall@10": rm.recall_at_k(ranked, gold, 10),
            "mrr@10": rm.mrr_at_k(ranked, gold, 10), "ndcg@10": rm.ndcg_at_k(ranked, gold, 10)}


def applicable(case: Case, i: int, *, retrieval: bool) -> list[str]:
    """The metric keys that apply to question ``i`` (0-based) of ``case``."""
    keys: list[str] = []
    if retrieval and case.evidence is not None and case.evidence[i]:
        keys += RETRIEVAL_KEYS
    if case.answers is not None and case.answers[i] is not None:
        keys += ["token_f1", "rouge_l"]
    if (case.options is not None and case.answer_key is not None and case.options[i]
            and case.answer_key[i] is not None):
        keys.append("mcq_accuracy")
    if case.answer_tolerance is not None and case.answer_tolerance[i] is not None:
        keys.append("numeric_accuracy")
    if gold_decision(case, i) is not None:
        keys.append("decision_accuracy")
    return keys


def gold_decision(case: Case, i: int) -> str | None:
    """yes/no/maybe for a research question (PubMedQA): ``meta.final_decision`` for one-question cases, else the
    decision the reference answer opens with."""
    meta = case.meta.get("final_decision") if case.n_questions == 1 else None
    return am.reference_decision(case.answers[i] if case.answers is not None else None, meta)


def structure_ok(case: Case, response: Any) -> bool:
    """Exactly one non-empty answer per input question, numbered 1..n in input order."""
    answers = getattr(response, "answers", None)
    if answers is None or len(answers) != case.n_questions:
        return False
    return all(qa.index == i + 1 and qa.answer.strip() for i, qa in enumerate(answers))


def score_case(case: Case, response: Any | None, *, retrieval: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-question rows and case-level fields for ``case``; ``response`` is None when the case failed."""
    rows: list[dict[str, Any]] = []
    answers = list(getattr(response, "answers", None) or [])
    for i, question in enumerate(case.questions):
        keys = applicable(case, i, retrieval=retrieval)
        qa = answers[i] if i < len(answers) else None
        row: dict[str, Any] = {"question_index": i + 1, "question": question,
                               "answer": qa.answer if qa is not None else None, "retrieved": [], "metrics": {}}
        if qa is None:  # failed case or a missing answer: everything that applies scores 0
            row["metrics"] = {key: 0.0 for key in keys}
            rows.append(row)
            continue
        ranked = ranked_passages(qa)
        row["retrieved"] = ranked
        cited = {s.id for s in qa.sources} | {s.id for sub in qa.sub_questions for s in sub.retrieved}
        text = strip_citations(qa.answer, sorted(cited, key=len, reverse=True))
        scores: dict[str, float] = {}
        if "hit@5" in keys:
            scores.update(retrieval_scores(ranked, case.evidence[i]))  # type: ignore[index]
        if "token_f1" in keys:
            ref = case.answers[i]  # type: ignore[index]
            scores["token_f1"] = am.token_f1(text, ref)
            scores["rouge_l"] = am.rouge_l(text, ref)
        if "mcq_accuracy" in keys:
            opts, key = case.options[i], case.answer_key[i]  # type: ignore[index]
            row["choice"] = am.parse_choice(text, opts)
            scores["mcq_accuracy"] = float(row["choice"] == key)
        if "decision_accuracy" in keys:
            row["decision"] = am.parse_decision(text)
            scores["decision_accuracy"] = float(row["decision"] == gold_decision(case, i))
        if "numeric_accuracy" in keys:
            row["parsed_number"] = am.parse_number(text)
            scores["numeric_accuracy"] = am.numeric_correct(text, case.answer_tolerance[i])  # type: ignore[index]
        row["metrics"] = {k: round(v, 6) for k, v in scores.items()}
        rows.append(row)
    summary_rouge = None
    if case.summary:
        summary_rouge = round(am.rouge_l(response.summary, case.summary), 6) if response is not None else 0.0
    usage = getattr(response, "usage", None)
    case_fields = {"summary_rouge_l": summary_rouge,
                   "structure_ok": response is not None and structure_ok(case, response),
                   "llm_calls": usage.llm_calls if usage else 0,
                   "prompt_tokens": usage.prompt_tokens if usage else 0,
                   "completion_tokens": usage.completion_tokens if usage else 0,
                   "notes": list(getattr(response, "notes", []) or [])}
    return rows, case_fields
