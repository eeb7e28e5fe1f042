"""The runner on the real graph (demo index, real embedder, extractive generator): outputs, robustness, resume."""

from __future__ import annotations

import json
import logging

import pytest
from clinrag.core.cases import Case, load_cases
from clinrag.evaluation.pipeline import run_evaluation
from clinrag.evaluation.runner import (
    EvaluationError,
    NullRetriever,
    default_agent_factory,
    plan_arms,
    text_length,
    truncate_scenario,
)
from clinrag.plugins.strategies import strategies
from clinrag.plugins.strategies.decomposition import DecompositionStrategy


class ExplodingStrategy(DecompositionStrategy):
    """Wiring only: the real decomposition strategy, except that it raises on cases whose id says so."""

    name = "test-exploding"

    def translate(self, case, llm=None, budget=None):
        if "explode" in case.id:
            raise RuntimeError(f"strategy failed on {case.id}")
        return super().translate(case, llm, budget)


if "test-exploding" not in strategies.names():
    strategies.register("test-exploding", ExplodingStrategy)

CHINESE = Case(id="zh-1", clinical_scenario="患者男性，65岁，胸痛3小时，心电图示II、III、aVF导联ST段抬高。",
               questions=["最可能的诊断是什么？", "首选的再灌注治疗是什么？"],
               answers=["急性下壁心肌梗死", "直接经皮冠状动脉介入治疗"], language="zh")
LONG = Case(id="very-long-1", clinical_scenario=" ".join(["A 70-year-old man has chest pain."] * 60),
            questions=["What is the most likely diagnosis?"], answers=["Myocardial infarction"])
EXPLODE = Case(id="explode-1", clinical_scenario="A woman with fever.", questions=["What next?", "Why?"],
               answers=["blood cultures", "sepsis"], evidence=[["x"], ["y"]])


def test_truncate_scenario_counts_cjk_characters():
    assert text_length("患者男性 has fever") == 6
    cut, note = truncate_scenario(CHINESE, 10)
    assert cut.clinical_scenario.startswith("患者男性，65岁，胸痛") and "zh-1" in note
    assert truncate_scenario(CHINESE, 1000) == (CHINESE, None)



class EmbeddingRetriever:
    """Stands in for an index retriever: has an embedder, retrieves nothing (no model is loaded)."""

    embedder = object()

    def retrieve(self, queries, k):
        return [[] for _ in queries]


def test_each_arm_gets_an_agent_built_for_it_sharing_retriever_and_generator():
    retriever = EmbeddingRetriever()
    factory = default_agent_factory(retriever, k=3)
    arms = plan_arms(["decomposition", "none"], ["extractive"], baseline_strategy="none")
    contexts = {arm.name: factory(arm).context for arm in arms}
    assert {n: c.strategy.name for n, c in contexts.items()} == {
        "decomposition": "decomposition", "none": "none", "no-retrieval": "none"}
    assert contexts["decomposition"].retriever is contexts["none"].retriever is retriever
    assert isinstance(contexts["no-retrieval"].retriever, NullRetriever)
    generator = contexts["decomposition"].generator
    assert all(c.generator is generator for c in contexts.values())  # one generator per (generator, adapter)
    assert generator.embedder is retriever.embedder and all(c.k == 3 for c in contexts.values())


def _demo_cases():
    from pathlib import Path

    return load_cases(Path(__file__).resolve().parents[2] / "examples" / "demo" / "cases.jsonl")[:2]


@pytest.mark.slow
def test_run_evaluation_end_to_end_robust_and_resumable(demo_index_dir, tmp_path, caplog):
    cases = [*_demo_cases(), CHINESE, LONG, EXPLODE]
    arms = plan_arms(["decomposition", "test-exploding"], ["extractive"])
    out = tmp_path / "eval"
    with caplog.at_level(logging.WARNING, logger="clinrag.evaluation"):  # two worker threads share the graph
        metrics = run_evaluation(cases, arms, out, index=demo_index_dir, k=3, max_scenario_words=100,
                                 progress=False, n_resamples=200, workers=2)
    # the over-long scenario is truncated with a warning naming the case
    assert any("very-long-1" in r.getMessage() and "truncated" in r.getMessage() for r in caplog.records)
    # the failing case is recorded with its error in the one arm where it fails; the run went on
    rows = [json.loads(line) for line in (out / "per_question.jsonl").read_text(encoding="utf-8").splitlines()]
    failed = [r for r in rows if r["error"]]
    assert {(r["arm"], r["case_id"]) for r in failed} == {("test-exploding", "explode-1")}
    assert "RuntimeError: strategy failed on explode-1" in failed[0]["error"]
    assert len(failed) == 2 and all(r["metrics"]["hit@5"] == 0.0 for r in failed)
    assert metrics["_run"] == {"ran": 15, "skipped": 0, "failed": 1}
    # the Chinese case ran end to end, one answer per question
    zh = [r for r in rows if r["case_id"] == "zh-1" and r["arm"] == "decomposition"]
    assert len(zh) == 2 and all(r["answer"] and r["case"]["structure_ok"] for r in zh)
    long_rows = [r for r in rows if r["case_id"] == "very-long-1"]
    assert all("very-long-1" in r["case"]["notes"][0] for r in long_rows)

    saved = json.loads((out / "metrics.json").read_text())
    n_q = sum(c.n_questions for c in cases)
    assert (saved["cases"], saved["questions"]) == (5, n_q)
    assert set(saved["arms"]) == {"decomposition", "test-exploding", "no-retrieval"}
    d = saved["arms"]["decomposition"]
    assert set(d["retrieval"]) == {"hit@5", "recall@10", "mrr@10", "ndcg@10"}
    assert d["retrieval"]["hit@5"] > 0.5  # the demo KB holds the gold passages of the demo cases
    assert set(d["answers"]) == {"token_f1", "rouge_l", "mcq_accuracy", "numeric_accuracy", "decision_accuracy"}
    assert d["answers"]["mcq_accuracy"] is not None and d["answers"]["numeric_accuracy"] is None
    assert 0 < d["summary"]["rouge_l"] <= 1
    assert d["structure"]["one_answer_per_question"] == 1.0
    assert set(d["cost"]) == {"llm_calls_per_case", "tokens_per_case", "seconds_per_case_p50", "seconds_per_case_p95"}
    assert d["cost"]["llm_calls_per_case"] == 0  # extractive + rule-based decomposition
    assert saved["arms"]["no-retrieval"]["retrieval"] is None
    assert saved["arms"]["test-exploding"]["errors"] == 1
    assert saved["arms"]["test-exploding"]["structure"]["one_answer_per_question"] == pytest.approx(4 / 5)
    assert any(c["b"] == "no-retrieval" and c["metric"] == "token_f1" for c in saved["comparisons"])
    report = (out / "report.md").read_text()
    assert "| `decomposition` |" in report and "**" in report and "Paired differences" in report
    for png in ("metrics_by_arm.png", "cost_vs_quality.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # rerun: finished cases are skipped, the failed one is retried (and fails again)
    again = run_evaluation(cases, arms, out, index=demo_index_dir, k=3, max_scenario_words=100, progress=False,
                           n_resamples=200)
    assert again["_run"] == {"ran": 1, "skipped": 14, "failed": 1, "recomputed": "1 (1 failed before)"}
    rows2 = (out / "per_question.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows2) == len(rows)  # the retried case replaced its old records
    assert again["arms"]["decomposition"] == saved["arms"]["decomposition"] | {
        "cost": again["arms"]["decomposition"]["cost"]}

    # a file cut mid-case and an edited case: both recomputed (and said so), never reused
    lines = (out / "per_question.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    first = json.loads(lines[0])
    cut = [ln for ln in lines if not (json.loads(ln)["case_id"] == first["case_id"] and json.loads(ln)["arm"]
                                      == first["arm"] and json.loads(ln)["question_index"] == 2)]
    (out / "per_question.jsonl").write_text("".join(cut), encoding="utf-8")
    edited = [*cases[:2], CHINESE.model_copy(update={"answers": ["急性心肌梗死", "溶栓"]}), LONG, EXPLODE]
    third = run_evaluation(edited, arms, out, index=demo_index_dir, k=3, max_scenario_words=100, progress=False,
                           n_resamples=200)
    assert third["_run"]["ran"] == 1 + 1 + 3  # the cut case, the failed one, the edited case in every arm
    assert third["_run"]["recomputed"] == "5 (3 case changed, 1 incomplete (cut short), 1 failed before)"
    assert len((out / "per_question.jsonl").read_text(encoding="utf-8").splitlines()) == len(rows)

    with pytest.raises(EvaluationError, match="differs in: k"):
        run_evaluation(cases, arms, out, index=demo_index_dir, k=4, progress=False)


def test_a_run_records_the_dtype_hf_resolves_to_and_a_changed_default_does_not_resume(tmp_path, monkeypatch):
    """A folder written while the CPU default was float32 must not be resumed once the default answers in
    bfloat16: the records would mix two precisions. The resolved dtype is part of run.json (float32 implicit)."""
    from dataclasses import replace

    from clinrag.core.models import precision

    monkeypatch.setattr(precision, "CPU_ANSWER_DTYPE", "float32")
    retriever = EmbeddingRetriever()
    extractive = default_agent_factory(retriever, k=1)

    def factory(arm):  # stands in for the hf generator: only the configuration is under test, no model loads
        return extractive(replace(arm, generator="extractive"))

    arms, cases = plan_arms(["none"], ["hf"], no_retrieval=False), _demo_cases()[:1]
    run = {"index": retriever, "k": 1, "progress": False, "agent_factory": factory, "n_resamples": 20}
    out = tmp_path / "f32"
    assert run_evaluation(cases, arms, out, **run)["_run"]["ran"] == 1
    assert "generator_settings" not in json.loads((out / "run.json").read_text())
    assert run_evaluation(cases, arms, out, **run)["_run"]["skipped"] == 1  # same default: resumes
    # asking for float32 explicitly is the same run as float32 by default
    assert run_evaluation(cases, arms, out, generator_options={"dtype": "float32"}, **run)["_run"]["skipped"] == 1

    monkeypatch.setattr(precision, "CPU_ANSWER_DTYPE", "bfloat16-weights")
    monkeypatch.setattr(precision, "cpu_computes_bf16", lambda: True)
    with pytest.raises(EvaluationError, match="differs in: generator_settings"):
        run_evaluation(cases, arms, out, **run)
    out_bf16 = tmp_path / "bf16"
    run_evaluation(cases, arms, out_bf16, generator_options={"dtype": "bfloat16-weights"}, **run)
    recorded = json.loads((out_bf16 / "run.json").read_text())
    assert recorded["generator_settings"] == {"hf": {"answer_dtype": "bfloat16-weights"}}
    assert "dtype" not in recorded["generator_options"]  # recorded once, as resolved
    # the new default is what was asked there: that folder resumes without the option
    assert run_evaluation(cases, arms, out_bf16, **run)["_run"]["skipped"] == 1
    # extractive arms have nothing implicit to record
    run_evaluation(cases, plan_arms(["none"], ["extractive"], no_retrieval=False), tmp_path / "ex", **run)
    assert "generator_settings" not in json.loads((tmp_path / "ex" / "run.json").read_text())


@pytest.mark.slow
def test_adapter_arms_run_base_and_adapter(demo_index_dir, smollm2_dir, tmp_path):
    """The real SmolLM2 through the hf generator, with --adapter: each strategy runs on the base model and with a
    (real, freshly initialised) LoRA adapter; LLM calls and generated tokens are counted per case."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    adapter, other = tmp_path / "lora-test", tmp_path / "lora-other"
    for folder in (adapter, other):  # two adapters in one run (e.g. with and without an extended vocabulary)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(smollm2_dir)),
                               LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
        model.save_pretrained(folder)
    arms = plan_arms(["none"], ["hf"], [str(adapter), str(other)], no_retrieval=False)
    cases = _demo_cases()[:1]
    metrics = run_evaluation(cases, arms, tmp_path / "ad", index=demo_index_dir, k=1, progress=False,
                             generator_options={"model": str(smollm2_dir), "max_new_tokens": 4}, n_resamples=100)
    assert set(metrics["arms"]) == {"none@hf", "none@hf+lora-test", "none@hf+lora-other"}
    assert all(b["errors"] == 0 for b in metrics["arms"].values())
    assert metrics["arms"]["none@hf+lora-test"]["config"]["adapter"] == str(adapter)
    assert metrics["arms"]["none@hf+lora-other"]["config"]["adapter"] == str(other)
    assert any(c["why"] == "adapter vs base" and c["a"] == "none@hf+lora-test" for c in metrics["comparisons"])
    assert any(c["why"] == "adapter vs adapter" and (c["a"], c["b"]) == ("none@hf+lora-test", "none@hf+lora-other")
               for c in metrics["comparisons"])
    for block in metrics["arms"].values():
        assert block["cost"]["llm_calls_per_case"] >= cases[0].n_questions + 1  # answers + summary
        assert 0 < block["cost"]["tokens_per_case"] <= 4 * (cases[0].n_questions + 1)
        assert block["answers"]["mcq_accuracy"] is not None and 0 <= block["answers"]["token_f1"] <= 1
