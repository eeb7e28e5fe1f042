"""CI's quick real evaluation: a subset index of the shared corpus, `clinrag evaluate --limit 3` on MedQuAD and
PubMedQA with the extractive generator, so the harness cannot silently break on real data."""

from __future__ import annotations

import json

import pytest
from clinrag.cli import main
from clinrag.core.cases import load_cases
from clinrag.evaluation.subset import build_subset_index
from clinrag.plugins.strategies import strategies

pytestmark = pytest.mark.slow

SETS = ("medquad_multi_dev.jsonl", "pubmedqa_dev.jsonl")


@pytest.fixture(scope="module")
def subset_index(shared_data, embedder, tmp_path_factory):
    cases = [c for name in SETS for c in load_cases(shared_data / "cases" / name)[:3]]
    out = tmp_path_factory.mktemp("subset") / "index"
    return build_subset_index(cases, shared_data / "corpus", out, extra=100, embedder=embedder, show_progress=False)


def two_strategies() -> str:
    preferred = [s for s in ("decomposition", "none", "multi_query") if s in strategies.names()]
    return ",".join(preferred[:2])


@pytest.mark.parametrize("name", SETS)
def test_quick_real_evaluation(shared_data, subset_index, tmp_path, name):
    out = tmp_path / "eval"
    rc = main(["evaluate", str(shared_data / "cases" / name), "--index", str(subset_index), "--limit", "3",
               "--strategies", two_strategies(), "--generator", "extractive", "--out", str(out),
               "--bootstrap-resamples", "200"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    n_questions = sum(c.n_questions for c in load_cases(shared_data / "cases" / name)[:3])
    assert (metrics["cases"], metrics["questions"]) == (3, n_questions)
    assert set(metrics["arms"]) == {*two_strategies().split(","), "no-retrieval"}
    for arm, block in metrics["arms"].items():
        assert set(block) >= {"retrieval", "answers", "summary", "structure", "cost"}
        assert block["errors"] == 0
        assert block["structure"]["one_answer_per_question"] == 1.0
        assert block["summary"] is None  # these sets have no reference summary: n/a, not 0
        assert block["answers"]["mcq_accuracy"] is None and block["answers"]["numeric_accuracy"] is None
        assert 0.0 <= block["answers"]["token_f1"] <= 1.0
        if arm == "no-retrieval":
            assert block["retrieval"] is None
        else:
            r = block["retrieval"]
            assert all(0.0 <= r[k] <= 1.0 for k in ("hit@5", "recall@10", "mrr@10", "ndcg@10"))
            assert r["hit@5"] > 0  # gold passages are in the index and dense retrieval finds some
            assert block["answers"]["token_f1"] > metrics["arms"]["no-retrieval"]["answers"]["token_f1"]
    lines = (out / "per_question.jsonl").read_text().splitlines()
    assert len(lines) == n_questions * len(metrics["arms"])
    assert (out / "report.md").exists() and (out / "metrics_by_arm.png").exists()
