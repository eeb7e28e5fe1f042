"""report.md tables (best arm in bold, lowest cost in bold, n/a for inapplicable) and charts; arm resolution."""

import pytest
from clinrag.core.errors import PluginError
from clinrag.evaluation.pipeline import baseline_strategy, resolve_strategies
from clinrag.evaluation.report import headline_metric, render_charts, render_markdown
from clinrag.plugins.strategies import strategies


def block(ndcg, f1, seconds, retrieval=True):
    return {"retrieval": {"hit@5": ndcg, "recall@10": ndcg, "mrr@10": ndcg, "ndcg@10": ndcg} if retrieval else None,
            "answers": {"token_f1": f1, "rouge_l": f1, "mcq_accuracy": None, "numeric_accuracy": None},
            "summary": None, "structure": {"one_answer_per_question": 1.0},
            "cost": {"llm_calls_per_case": 0.0, "tokens_per_case": 0.0, "seconds_per_case_p50": seconds,
                     "seconds_per_case_p95": seconds}, "errors": 0}


METRICS = {"cases": 2, "questions": 5,
           "arms": {"decomposition": block(0.8, 0.3, 2.0), "none": block(0.6, 0.35, 1.0),
                    "no-retrieval": block(None, 0.1, 0.1, retrieval=False)},
           "comparisons": [{"a": "decomposition", "b": "none", "metric": "ndcg@10", "diff": 0.2, "ci_low": 0.05,
                            "ci_high": 0.35, "n_cases": 2, "level": 0.95, "significant": True,
                            "why": "vs no translation"}]}


def test_markdown_marks_best_and_not_applicable():
    md = render_markdown(METRICS, command="clinrag evaluate x --index y")
    assert "| `decomposition` | **0.800** | **0.800** | **0.800** | **0.800** |" in md
    assert "| `no-retrieval` | n/a | n/a | n/a | n/a |" in md
    assert "| `none` | **0.350** | **0.350** |" in md  # best answers
    assert "**0.100**" in md  # lowest seconds among arms is bold
    assert "mcq_accuracy" not in md  # no arm has it: no column
    assert "| `decomposition` | `none` | ndcg@10 | +0.200 * | [+0.050, +0.350] | vs no translation |" in md
    assert "clinrag evaluate x --index y" in md


def test_charts_are_pngs(tmp_path):
    assert headline_metric(METRICS) == "ndcg@10"
    names = render_charts(METRICS, tmp_path)
    assert names == ["metrics_by_arm.png", "cost_vs_quality.png"]
    for n in names:
        assert (tmp_path / n).read_bytes()[:4] == b"\x89PNG"


def test_resolve_strategies():
    assert resolve_strategies("all") == strategies.names()
    assert resolve_strategies(" decomposition , ") == ["decomposition"]
    with pytest.raises(PluginError, match="valid: .*decomposition"):
        resolve_strategies("decomposition,nope")
    assert baseline_strategy() in ("none", "decomposition")
