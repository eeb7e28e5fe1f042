"""metrics.json from hand-made records: micro-averages, null groups, cost percentiles, comparison pairs."""

import pytest
from clinrag.evaluation.aggregate import aggregate, comparison_pairs
from clinrag.evaluation.runner import Arm, EvaluationError, generator_kwargs, plan_arms


def rec(arm, case, qi, metrics, seconds=1.0, structure=True, error=None, summary=None):
    return {"arm": arm, "case_id": case, "question_index": qi, "metrics": metrics, "error": error,
            "case": {"seconds": seconds, "llm_calls": 2, "completion_tokens": 10, "structure_ok": structure,
                     "summary_rouge_l": summary}}


ARMS = [Arm("decomposition", "decomposition", "extractive"),
        Arm("no-retrieval", "decomposition", "extractive", retrieval=False)]


def test_aggregate_hand_computed():
    r = [rec("decomposition", "c1", 1, {"hit@5": 1.0, "recall@10": 1.0, "mrr@10": 1.0, "ndcg@10": 1.0, "token_f1": 0.5,
                                         "rouge_l": 0.4}, seconds=1.0),
         rec("decomposition", "c1", 2, {"hit@5": 0.0, "recall@10": 0.0, "mrr@10": 0.0, "ndcg@10": 0.0, "token_f1": 0.1,
                                         "rouge_l": 0.2}, seconds=1.0),
         rec("decomposition", "c2", 1, {"hit@5": 1.0, "recall@10": 0.5, "mrr@10": 0.5, "ndcg@10": 0.5, "token_f1": 0.3,
                                         "rouge_l": 0.3}, seconds=3.0, structure=False),
         rec("no-retrieval", "c1", 1, {"token_f1": 0.0, "rouge_l": 0.0}, seconds=0.1),
         rec("no-retrieval", "c1", 2, {"token_f1": 0.0, "rouge_l": 0.0}, seconds=0.1),
         rec("no-retrieval", "c2", 1, {"token_f1": 0.3, "rouge_l": 0.0}, seconds=0.2, error="ValueError: x")]
    m = aggregate(r, ARMS, ["c1", "c2"], 3, n_resamples=200)
    assert (m["cases"], m["questions"]) == (2, 3)
    d = m["arms"]["decomposition"]
    assert d["retrieval"]["hit@5"] == pytest.approx(2 / 3, abs=1e-4)  # per question (4 decimals), not per case
    assert d["retrieval"]["recall@10"] == pytest.approx(0.5)
    assert d["answers"] == {"token_f1": 0.3, "rouge_l": 0.3, "mcq_accuracy": None, "numeric_accuracy": None,
                            "decision_accuracy": None}
    assert d["summary"] is None
    assert d["structure"]["one_answer_per_question"] == 0.5
    assert d["cost"] == {"llm_calls_per_case": 2.0, "tokens_per_case": 10.0, "seconds_per_case_p50": 2.0,
                         "seconds_per_case_p95": 2.9}
    n = m["arms"]["no-retrieval"]
    assert n["retrieval"] is None and n["errors"] == 1
    comp = {(c["a"], c["b"], c["metric"]): c for c in m["comparisons"]}
    assert comp[("decomposition", "no-retrieval", "token_f1")]["diff"] == pytest.approx(0.2)
    assert ("decomposition", "no-retrieval", "hit@5") not in comp  # no retrieval: nothing to pair
    assert d["decisions"] is None  # no question was scored by decision_accuracy


def test_decisions_count_what_each_arm_committed_to():
    def dec(arm, case, decision, right):
        row = rec(arm, case, 1, {"decision_accuracy": float(right), "token_f1": 0.1, "rouge_l": 0.1})
        return {**row, "decision": decision}

    r = [dec("decomposition", "c1", "yes", True), dec("decomposition", "c2", "yes", False),
         dec("decomposition", "c3", "no", True),
         dec("no-retrieval", "c1", None, False), dec("no-retrieval", "c2", "maybe", False),
         dec("no-retrieval", "c3", None, False)]
    m = aggregate(r, ARMS, ["c1", "c2", "c3"], 3, n_resamples=50)
    assert m["arms"]["decomposition"]["decisions"] == {"questions": 3, "given": 3, "yes": 2, "no": 1, "maybe": 0}
    assert m["arms"]["no-retrieval"]["decisions"] == {"questions": 3, "given": 1, "yes": 0, "no": 0, "maybe": 1}
    assert m["arms"]["decomposition"]["answers"]["decision_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    from clinrag.evaluation.report import render_markdown

    report = render_markdown(m)
    assert "| `decomposition` | 3 | 3 | 2 | 1 | 0 |" in report and "| `no-retrieval` | 3 | 1 | 0 | 0 | 1 |" in report


def test_plan_arms_names_and_comparison_pairs():
    arms = plan_arms(["decomposition", "none"], ["hf"], "/x/adapters/sft-1/")
    two = [a.name for a in plan_arms(["decomposition"], ["extractive", "hf"], "/x/sft-1", no_retrieval=False)]
    assert two == ["decomposition@extractive", "decomposition@hf", "decomposition@hf+sft-1"]  # extractive: no adapter
    names = [a.name for a in arms]
    assert names == ["decomposition@hf", "none@hf", "no-retrieval@hf",
                     "decomposition@hf+sft-1", "none@hf+sft-1", "no-retrieval@hf+sft-1"]
    assert [a.name for a in plan_arms(["decomposition"], ["extractive"])] == ["decomposition", "no-retrieval"]
    blocks = {a.name: {"answers": {"token_f1": 0.1 * i}} for i, a in enumerate(arms)}
    pairs = {(a, b): why for a, b, why in comparison_pairs(arms, blocks, "token_f1")}
    assert pairs[("decomposition@hf", "none@hf")] == "vs no translation"
    assert pairs[("decomposition@hf", "no-retrieval@hf")] == "vs no retrieval"
    assert pairs[("decomposition@hf+sft-1", "decomposition@hf")] == "adapter vs base"
    assert pairs[("no-retrieval@hf+sft-1", "decomposition@hf")] == "best vs other"
    assert ("decomposition@hf", "none@hf+sft-1") not in pairs  # different generator variants: not paired by rule


def test_two_adapters_get_their_own_arms_and_a_paired_comparison():
    """The vocabulary ablation: tuned with vs without the extended vocabulary, on the same cases, one run."""
    arms = plan_arms(["decomposition"], ["hf"], ["/r/tuned-half-vocab", "/r/tuned-half-novocab/"], no_retrieval=False)
    assert [a.name for a in arms] == ["decomposition@hf", "decomposition@hf+tuned-half-vocab",
                                      "decomposition@hf+tuned-half-novocab"]
    blocks = {a.name: {"answers": {"decision_accuracy": v}} for a, v in zip(arms, (0.5, 0.4, 0.3))}
    pairs = {(a, b): why for a, b, why in comparison_pairs(arms, blocks, "decision_accuracy")}
    assert pairs[("decomposition@hf+tuned-half-vocab", "decomposition@hf+tuned-half-novocab")] == "adapter vs adapter"
    assert pairs[("decomposition@hf+tuned-half-novocab", "decomposition@hf")] == "adapter vs base"
    records = [rec(a.name, c, 1, {"decision_accuracy": float(v)})
               for a, outcomes in zip(arms, ([1, 1, 0, 1], [1, 0, 0, 1], [0, 0, 0, 1]))
               for c, v in zip("wxyz", outcomes)]
    m = aggregate(records, arms, list("wxyz"), 4, n_resamples=200)
    comp = {(c["a"], c["b"], c["metric"]): c for c in m["comparisons"]}
    ab = comp[("decomposition@hf+tuned-half-vocab", "decomposition@hf+tuned-half-novocab", "decision_accuracy")]
    assert ab["diff"] == pytest.approx(0.25) and ab["why"] == "adapter vs adapter" and ab["n_cases"] == 4
    with pytest.raises(EvaluationError, match="both named 'tuned'"):
        plan_arms(["decomposition"], ["hf"], ["/a/tuned", "/b/tuned"])


def test_generator_options_go_only_where_accepted():
    opts = {"model": "m", "max_new_tokens": 64}
    assert generator_kwargs("extractive", opts) == {}
    assert generator_kwargs("hf", opts) == opts
    with pytest.raises(EvaluationError, match="adapter"):
        plan_arms(["decomposition"], ["extractive"], "/x/sft-1")
