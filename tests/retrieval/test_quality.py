"""Retrieval-quality evaluation agrees with ranking through the retriever and the project's metric functions."""

from __future__ import annotations

import json

import pytest
from clinrag.core.types import Query
from clinrag.retrieval.metrics import hit_at_k, mrr_at_k, recall_at_k
from clinrag.retrieval.quality import evaluate_cases, markdown_table
from clinrag.retrieval.retriever import IndexRetriever


def test_evaluate_matches_retrieve(small_index_dir, small_passages, embedder, tmp_path):
    p = small_passages
    questions = [p[0].title, p[5].title, "completely unrelated astronomy question"]
    gold = [[p[0].id], [p[5].id, p[6].id], [p[7].id]]
    case = {"id": "c", "clinical_scenario": "s", "questions": questions + ["no evidence here"],
            "evidence": gold + [[]]}
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(case) + "\n", encoding="utf-8")
    r = IndexRetriever(small_index_dir, embedder=embedder)
    res = evaluate_cases(r, path, ["dense", "bm25", "hybrid"])
    assert res["questions"] == 3 and res["skipped_without_evidence"] == 1
    for mode in ("dense", "bm25", "hybrid"):
        rows = r.retrieve([Query(q) for q in questions], 10, mode=mode)
        ranked = [[h.id for h in row] for row in rows]
        m = res["modes"][mode]
        assert m["hit@5"] == pytest.approx(sum(hit_at_k(x, g, 5) for x, g in zip(ranked, gold)) / 3, abs=1e-9)
        assert m["recall@10"] == pytest.approx(sum(recall_at_k(x, g, 10) for x, g in zip(ranked, gold)) / 3)
        assert m["mrr@10"] == pytest.approx(sum(mrr_at_k(x, g, 10) for x, g in zip(ranked, gold)) / 3)
    assert res["modes"]["dense"]["hit@5"] >= 2 / 3  # a passage's own title finds it
    assert "| cases.jsonl | 3 | hybrid |" in markdown_table([res])


def test_missing_gold_is_counted_and_an_index_without_any_is_not_scored(small_index_dir, small_passages, embedder,
                                                                        tmp_path):
    from clinrag.retrieval.quality import missing_lines

    p = small_passages
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"id": "a", "clinical_scenario": "s", "questions": [p[0].title, "other"],
                                 "evidence": [[p[0].id, "elsewhere-1"], ["elsewhere-2"]]}) + "\n", encoding="utf-8")
    r = IndexRetriever(small_index_dir, embedder=embedder)
    res = evaluate_cases(r, cases, ["dense"])
    assert (res["gold_ids"], res["gold_missing"]) == (3, 2)
    assert missing_lines([res]) == ["cases.jsonl: 2 of 3 gold ids are not in the index"]
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text(json.dumps({"id": "b", "clinical_scenario": "s", "questions": ["q"],
                                   "evidence": [["pubmed-1"]]}) + "\n", encoding="utf-8")
    res = evaluate_cases(r, foreign, ["dense", "bm25"])
    assert res["modes"] == {"dense": None, "bm25": None} and res["gold_missing"] == 1
    table = markdown_table([res])
    assert "no gold passage in this index (1 gold ids missing): not scored" in table and "0.000" not in table
