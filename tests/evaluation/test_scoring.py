"""Scoring one response: retrieval from `retrieved`, answers without citations, not-applicable left out."""

import pytest
from clinrag.agent.response import (
    CaseResponse,
    QuestionAnswer,
    RetrievedSource,
    SubAnswer,
    UsageReport,
)
from clinrag.core.cases import Case
from clinrag.evaluation.scoring import (
    applicable,
    ranked_passages,
    score_case,
    strip_citations,
    structure_ok,
)


def sub(sid, retrieved, answer="x"):
    return SubAnswer(id=sid, text="q", answer=answer, sources=[],
                     retrieved=[RetrievedSource(id=i, score=s, doc_id=i.split("#")[0] if "#" in i else None)
                                for i, s in retrieved])


def qa(index, answer, subs):
    return QuestionAnswer(index=index, question="q", answer=answer, sources=[], sub_questions=subs)


def test_ranked_passages_merge_sub_questions_by_best_score():
    q = qa(1, "a", [sub("1a", [("p1", 0.9), ("p2", 0.5)]), sub("1b", [("p3", 0.7), ("p1", 0.6), ("p4", 0.5)])])
    # p1 keeps its best score 0.9; ties at 0.5 go to the better rank within its sub-question (p4 rank 2 < p2? no:
    # p2 is rank 1 in 1a, p4 rank 2 in 1b → p2 first)
    assert ranked_passages(q) == ["p1", "p3", "p2", "p4"]


def test_chunks_count_as_their_document():
    q = qa(1, "a", [sub("1a", [("doc1#0", 0.9), ("doc2", 0.8), ("doc1#3", 0.7)])])
    assert ranked_passages(q) == ["doc1", "doc2"]


def test_strip_citations():
    assert strip_citations("Give oxygen. [p1] [p2]", ["p1", "p2"]) == "Give oxygen."


CASE = Case(id="c1", clinical_scenario="A man.", questions=["Q1?", "Q2?", "Q3?"],
            answers=["give oxygen now", "aspirin", "412"],
            evidence=[["p1"], [], ["p9"]],
            options=[None, {"A": "Aspirin", "B": "Heparin"}, None], answer_key=[None, "A", None],
            answer_tolerance=[None, None, (400.0, 420.0)], summary="old man with pneumonia")


def response(answers):
    return CaseResponse(case_id="c1", strategy="s", generator="g", summary="old man with cough", answers=answers,
                        usage=UsageReport(llm_calls=3, prompt_tokens=100, completion_tokens=40, seconds=1.0))


def test_applicable_metrics_follow_reference_fields():
    assert applicable(CASE, 0, retrieval=True) == ["hit@5", "recall@10", "mrr@10", "ndcg@10", "token_f1", "rouge_l"]
    assert applicable(CASE, 1, retrieval=True) == ["token_f1", "rouge_l", "mcq_accuracy"]  # empty evidence: n/a
    assert applicable(CASE, 2, retrieval=False) == ["token_f1", "rouge_l", "numeric_accuracy"]


def test_score_case_hand_computed():
    resp = response([qa(1, "Give oxygen now [p2]", [sub("1", [("p2", 0.9), ("p1", 0.8)])]),
                     qa(2, "A. Aspirin", [sub("2", [("p5", 0.9)])]),
                     qa(3, "The value is 413 [p9]", [sub("3", [("p7", 0.9), ("p8", 0.8)])])])
    rows, case = score_case(CASE, resp, retrieval=True)
    m1, m2, m3 = (r["metrics"] for r in rows)
    assert m1["hit@5"] == 1.0 and m1["mrr@10"] == 0.5 and m1["token_f1"] == 1.0  # citation stripped
    assert m1["ndcg@10"] == pytest.approx(0.630930, abs=1e-6)  # 1/log2(3)
    assert set(m2) == {"token_f1", "rouge_l", "mcq_accuracy"} and m2["mcq_accuracy"] == 1.0
    assert rows[1]["choice"] == "A"
    assert m3["hit@5"] == 0.0 and m3["numeric_accuracy"] == 1.0 and rows[2]["parsed_number"] == 413.0
    assert case["structure_ok"] and case["llm_calls"] == 3 and case["completion_tokens"] == 40
    # summary ROUGE-L: LCS(old man with pneumonia, old man with cough) = 3 of 4 → 0.75
    assert case["summary_rouge_l"] == pytest.approx(0.75)


def test_failed_case_scores_zero_on_what_applies():
    rows, case = score_case(CASE, None, retrieval=True)
    assert rows[0]["metrics"] == {k: 0.0 for k in ("hit@5", "recall@10", "mrr@10", "ndcg@10", "token_f1", "rouge_l")}
    assert rows[1]["metrics"] == {"token_f1": 0.0, "rouge_l": 0.0, "mcq_accuracy": 0.0}
    assert not case["structure_ok"] and case["summary_rouge_l"] == 0.0


def test_structure_requires_one_non_empty_answer_per_question():
    one = [qa(i, "x", []) for i in (1, 2, 3)]
    assert structure_ok(CASE, response(one))
    assert not structure_ok(CASE, response(one[:2]))
    assert not structure_ok(CASE, response([one[0], one[1], qa(3, "  ", [])]))
    assert not structure_ok(CASE, response([one[1], one[0], one[2]]))
