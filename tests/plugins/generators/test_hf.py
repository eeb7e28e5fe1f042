"""The ``hf`` generator with real SmolLM2-135M-Instruct: CLI end to end, GGUF loading, clear load errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clinrag.cli import main

REPO = Path(__file__).resolve().parents[3]
DEMO_CASES = REPO / "examples" / "demo" / "cases.jsonl"


@pytest.mark.slow
def test_clinrag_answer_with_hf_smollm2(smollm2_dir, demo_index_dir, capsys):
    rc = main(["answer", str(DEMO_CASES), "--index", str(demo_index_dir), "--generator", "hf", "-k", "2",
               "--model", str(smollm2_dir), "--max-new-tokens", "8", "--case-id", "demo-pneumonia-sepsis",
               "--format", "json"])
    assert rc == 0
    response = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert response["generator"] == "hf" and response["case_id"] == "demo-pneumonia-sepsis"
    assert [a["index"] for a in response["answers"]] == [1, 2, 3]  # one answer per question
    assert all(a["answer"].strip() for a in response["answers"])
    assert response["summary"].strip()
    n_sub = sum(len(a["sub_questions"]) for a in response["answers"])
    usage = response["usage"]
    assert usage["llm_calls"] == n_sub + 1  # one per sub-question + the summary (decomposition uses no LLM)
    assert 0 < usage["completion_tokens"] <= 8 * (n_sub + 1)
    assert usage["prompt_tokens"] > 100 * n_sub


@pytest.mark.slow
def test_gguf_path_loads_and_matches_the_converted_folder(smollm2_gguf, smollm2_dir):
    from clinrag.plugins.generators.hf import HFChatLLM

    conv = [{"role": "user", "content": "Name one symptom of pneumonia."}]
    from_gguf, from_dir = HFChatLLM(str(smollm2_gguf), max_new_tokens=6), HFChatLLM(str(smollm2_dir), max_new_tokens=6)
    ids = from_gguf.encode(conv)
    assert ids == from_dir.encode(conv)  # same tokenizer and chat template either way
    out_gguf, _ = from_gguf.generate_ids([ids])
    out_dir, _ = from_dir.generate_ids([ids])
    assert out_gguf == out_dir and len(out_gguf[0]) > 0


def test_missing_model_is_one_clear_line(demo_index_dir, capsys, tmp_path):
    for model, expected in ((str(tmp_path / "nope.gguf"), "does not exist"),
                            ("nonexistent-org/not-a-model-xyz", "not in the local Hugging Face cache")):
        rc = main(["answer", str(DEMO_CASES), "--index", str(demo_index_dir), "--generator", "hf", "-k", "2",
                   "--model", model, "--case-id", "demo-pneumonia-sepsis"])
        err = capsys.readouterr().err.strip()
        assert rc == 2
        assert len(err.splitlines()) == 1 and expected in err and "Traceback" not in err


@pytest.mark.slow
def test_shared_data_case_with_hf_from_gguf(shared_data, smollm2_gguf, demo_index_dir, capsys):
    """A real multi-question MedQuAD case, answered by SmolLM2 loaded straight from its .gguf file."""
    rc = main(["answer", str(shared_data / "cases" / "medquad_multi_dev.jsonl"), "--index", str(demo_index_dir),
               "--generator", "hf", "--model", str(smollm2_gguf), "-k", "2", "--max-new-tokens", "4", "--limit", "1",
               "--format", "json"])
    assert rc == 0
    response = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert response["generator"] == "hf" and len(response["answers"]) >= 3
    assert all(a["answer"].strip() for a in response["answers"])


@pytest.mark.slow
def test_single_pass_answer_mode_with_smollm2(smollm2_dir, capsys):
    """The whole-case mode (the format fine-tuning's whole_case mode trains) with a real model: one call, no index."""
    rc = main(["answer", str(DEMO_CASES), "--answer-mode", "single_pass", "--generator", "hf",
               "--model", str(smollm2_dir), "--max-new-tokens", "48", "--case-id", "demo-hypothyroidism",
               "--format", "json"])
    assert rc == 0
    resp = json.loads(capsys.readouterr().out.strip())
    assert resp["strategy"] == "single_pass" and len(resp["answers"]) == 3
    assert resp["usage"]["llm_calls"] == 1 and 0 < resp["usage"]["completion_tokens"] <= 48
    assert all(a["answer"] for a in resp["answers"]) and all(a["sources"] == [] for a in resp["answers"])


@pytest.mark.slow
def test_summary_decoded_with_the_answers_equals_separate_calls(smollm2_dir):
    """The exact (float32) path: one batch for answers + summary gives the texts of separate calls."""
    from clinrag.core.cases import load_cases
    from clinrag.core.types import Query, SubQuestion
    from clinrag.plugins.generators.base import AnswerRequest, SummarizesWithAnswers
    from clinrag.plugins.generators.hf import HFGenerator

    case = load_cases(DEMO_CASES)[0]
    requests = [AnswerRequest(SubQuestion(f"q{i + 1}", i, q, (Query(q),)), q, ()) for i, q in
                enumerate(case.questions)]
    gen = HFGenerator(str(smollm2_dir), max_new_tokens=10, summary_max_new_tokens=14, dtype="float32")
    assert isinstance(gen, SummarizesWithAnswers)
    answers, summary = gen.answer_with_summary(case, requests)
    stats, ids = gen.llm.last_stats, gen.llm.last_token_ids
    assert stats.batch == len(requests) + 1  # one decode for every answer and the summary
    system_and_scenario = len(gen.llm.encode([{"role": "system", "content": "x"}]))
    assert stats.shared_prefix_tokens > system_and_scenario  # the summary shares the scenario prefix too
    assert len(ids[-1]) <= 14 and all(len(i) <= 10 for i in ids[:-1])  # its own limit per row
    assert [a.text for a in answers] == [g.text for g in gen.answer(case, requests)]
    assert summary.text == gen.summarize(case).text and summary.text


@pytest.mark.slow
def test_hf_chat_llm_answers_with_bf16_weights(tiny_qwen2_dir, tmp_path, monkeypatch):
    from clinrag.core.models.weight_only import has_bf16_weights
    from clinrag.plugins.generators.hf import HFChatLLM

    monkeypatch.setenv("CLINRAG_CACHE", str(tmp_path))
    llm = HFChatLLM(str(tiny_qwen2_dir), dtype="bf16-weights", device="cpu", max_new_tokens=3)
    gens = llm.chat([[{"role": "user", "content": "What causes asthma?"}], [{"role": "user", "content": "Hi"}]])
    assert has_bf16_weights(llm.model) and len(gens) == 2
    assert all(0 < len(ids) <= 3 for ids in llm.last_token_ids)


def test_resolved_settings_name_the_dtype_it_answers_in_leaving_float32_implicit(monkeypatch):
    """What an evaluation records beside the options: the resolved dtype, so a run written under one default is not
    resumed under another. float32 (what every earlier run used) stays implicit."""
    from clinrag.core.models import precision
    from clinrag.plugins.generators.base import ResolvesRunSettings
    from clinrag.plugins.generators.hf import HFGenerator

    assert isinstance(HFGenerator, ResolvesRunSettings)
    monkeypatch.setattr(precision, "CPU_ANSWER_DTYPE", "float32")
    assert HFGenerator.resolved_settings({}) == {} == HFGenerator.resolved_settings({"dtype": "float32"})
    assert HFGenerator.resolved_settings({"dtype": "bf16-weights", "device": "cpu"}) == {
        "answer_dtype": "bfloat16-weights"}
    assert HFGenerator.resolved_settings({"dtype": "bfloat16", "device": "cpu"}) == {"answer_dtype": "bfloat16"}
    # the CPU default switched to a bfloat16 kind on a CPU that computes it: the implicit choice is now recorded
    monkeypatch.setattr(precision, "CPU_ANSWER_DTYPE", "bfloat16-weights")
    monkeypatch.setattr(precision, "cpu_computes_bf16", lambda: True)
    assert HFGenerator.resolved_settings({"device": "cpu"}) == {"answer_dtype": "bfloat16-weights"}
    monkeypatch.setattr(precision, "cpu_computes_bf16", lambda: False)  # emulated bf16 is slower: float32
    assert HFGenerator.resolved_settings({"device": "cpu"}) == {}
