"""Cases → prompt/completion rows: rendered by the inference prompts, RAFT passages, splits without leakage;
and the single-pass (whole-case) format with its parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clinrag.core import prompts
from clinrag.core.cases import Case, load_cases
from clinrag.core.prompts import parse_whole_case, whole_case_completion
from clinrag.finetune.config import DataConfig, DataError
from clinrag.finetune.data import (
    PassageSource,
    build_examples,
    case_fingerprint,
    prepare_data,
    reference_answer,
    split_cases,
)

REPO = Path(__file__).resolve().parents[2]
DEMO_CASES = REPO / "examples" / "demo" / "cases.jsonl"


def test_rows_follow_the_default_strategy_and_the_generator_prompt():
    from clinrag.plugins.generators.base import AnswerRequest
    from clinrag.plugins.generators.llm import request_messages
    from clinrag.plugins.strategies import get_strategy

    cases = load_cases(DEMO_CASES)
    rows, stats = build_examples(cases, summaries=True)
    questions = [r for r in rows if r["kind"] == "question"]
    expected = []
    for case in cases:  # what the graph asks: the strategy's sub-questions, facts included, rendered by hf's code
        for sq in get_strategy("decomposition").translate(case).sub_questions:
            req = AnswerRequest(sq, case.questions[sq.question_index], (),
                                case.reference("options", sq.question_index) if case.options else None)
            expected.append(request_messages(case, req))
    assert [r["prompt"] for r in questions] == expected
    assert any("Relevant facts:" in r["prompt"][1]["content"] for r in questions)
    q = questions[0]
    case = next(c for c in cases if c.id == q["case_id"])
    assert q["completion"] == [{"role": "assistant", "content": case.answers[q["question_index"]]}]
    s = next(r for r in rows if r["kind"] == "summary")
    assert s["prompt"] == prompts.summary_messages(next(c for c in cases if c.id == s["case_id"]))
    assert stats.question_examples == len(expected) >= sum(c.n_questions for c in cases)
    assert stats.summary_examples == sum(1 for c in cases if c.summary)
    assert "(no passages retrieved)" in q["prompt"][1]["content"] and not stats.with_passages


def _graph_prompts(case, index_dir, embedder, k):
    """Every answer conversation the real graph sends to an ``hf`` generator for ``case`` (its LLM is replaced by
    a recorder: the prompts, not the model, are under test)."""
    from clinrag.agent.context import AgentContext
    from clinrag.agent.run import Agent
    from clinrag.core.types import Generation
    from clinrag.plugins.generators.hf import HFGenerator
    from clinrag.plugins.strategies import get_strategy
    from clinrag.retrieval.retriever import IndexRetriever

    sent = []

    class Recorder:
        def chat(self, conversations, *, max_new_tokens=None):
            sent.extend(conversations)
            return [Generation("ok") for _ in conversations]

    class RecordingHF(HFGenerator):
        @property
        def llm(self):
            return Recorder()

    ctx = AgentContext(retriever=IndexRetriever(index_dir, embedder=embedder), generator=RecordingHF(model="unused"),
                       strategy=get_strategy("decomposition"), k=k)
    Agent(ctx).answer(case)
    return [c for c in sent if "Question:" in c[-1]["content"]]


@pytest.mark.slow
def test_training_prompt_is_the_prompt_the_graph_sends(demo_index_dir, embedder, qwen_tokenizer_dir):
    """Through the chat template, the training prompt equals the hf generator's prompt for the same case, given the
    same passages (RAFT off); with RAFT mixing on, only the fenced passage block differs."""
    import re

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir))
    render = lambda msgs: tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)  # noqa: E731
    case = next(c for c in load_cases(DEMO_CASES) if c.n_questions >= 3)
    src = PassageSource.from_index(str(demo_index_dir), embedder=embedder)
    sent = _graph_prompts(case, demo_index_dir, embedder, k=5)
    rows, _ = build_examples([case], passages=src, distractors=None, k=5, summaries=False)
    assert len(rows) == len(sent) >= 3
    assert [render(r["prompt"]) for r in rows] == [render(c) for c in sent]

    raft, _ = build_examples([case], passages=src, distractors=2, k=5, summaries=False)
    fence = re.compile(re.escape(prompts.PASSAGE_FENCE) + ".*?" + re.escape(prompts.PASSAGE_FENCE_END), re.S)
    outside = lambda text: fence.sub("<passages>", text)  # noqa: E731
    assert [outside(render(r["prompt"])) for r in raft] == [outside(render(c)) for c in sent]
    assert [render(r["prompt"]) for r in raft] != [render(c) for c in sent]


def test_answer_key_becomes_the_completion_when_no_answer():
    case = Case(id="x", clinical_scenario="s", questions=["q?"], options=[{"A": "aspirin", "B": "heparin"}],
                answer_key=["B"])
    assert reference_answer(case, 0) == "B. heparin"
    rows, _ = build_examples([case], summaries=False)
    assert rows[0]["completion"][0]["content"] == "B. heparin"
    assert "Options:\nA. aspirin\nB. heparin" in rows[0]["prompt"][1]["content"]


def test_raft_passages_hold_gold_plus_distractors(demo_index_dir, embedder):
    cases = load_cases(DEMO_CASES)
    src = PassageSource.from_index(str(demo_index_dir), embedder=embedder)
    rows, stats = build_examples(cases, passages=src, distractors=2, summaries=False, seed=1)
    assert stats.with_passages and stats.gold_missing == 0
    for r in rows:
        case = next(c for c in cases if c.id == r["case_id"])
        gold = case.evidence[r["question_index"]]
        text = r["prompt"][1]["content"]
        ids = [line[1:].split("]")[0] for line in text.split("\n") if line.startswith("[kb-")]
        assert set(gold) <= set(ids)  # every gold passage is in the prompt
        assert len(ids) == len(set(gold)) + 2  # plus exactly two distractors
    again, _ = build_examples(cases, passages=src, distractors=2, summaries=False, seed=1)
    assert again == rows  # seeded order: the same data on every run


def test_whole_case_mode_and_parser_round_trip():
    cases = load_cases(DEMO_CASES)
    rows, stats = build_examples(cases, fmt="whole_case")
    assert stats.whole_case_examples == len(rows) == sum(1 for c in cases if c.summary and c.answers)
    case = next(c for c in cases if c.id == rows[0]["case_id"])
    assert rows[0]["prompt"] == prompts.whole_case_messages(case)
    summary, answers = parse_whole_case(rows[0]["completion"][0]["content"], case.n_questions)
    assert summary == " ".join(case.summary.split())
    assert answers == [" ".join(a.split()) for a in case.answers]


@pytest.mark.parametrize("text,n,expected", [
    ("Summary: Chest pain.\nAnswers:\n1. STEMI [kb-1]\n2. Aspirin\n   and PCI\n3. surplus", 2,
     ("Chest pain.", ["STEMI [kb-1]", "Aspirin and PCI"])),
    ("**Summary:** Fever, cough.\n\n**Answers:**\n1) Pneumonia\n2) CURB-65 is 3", 3,
     ("Fever, cough.", ["Pneumonia", "CURB-65 is 3", ""])),
    ("The patient has AF.\n1. Irregular rhythm\n2. Apixaban 5 mg", 2, ("The patient has AF.", ["Irregular rhythm", "Apixaban 5 mg"])),
    ("Summary: only a summary", 2, ("only a summary", ["", ""])),
    ("summary: s\nanswers: Give 2.5 mg.", 1, ("s", ["Give 2.5 mg."])),
    ("", 2, ("", ["", ""])),
])
def test_parse_whole_case_messy_outputs(text, n, expected):
    assert parse_whole_case(text, n) == expected
    assert parse_whole_case(whole_case_completion(expected[0] or "x", ["a", "b"]), 2)[1] == ["a", "b"]


def test_split_dedups_and_keeps_augmented_rows_out_of_eval():
    def c(i, scen, aug=None):
        return Case(id=i, clinical_scenario=scen, questions=["q?"], answers=["a"],
                    meta={"augmented_from": aug} if aug else {})
    train = [c("a", "Man, 50, chest pain."), c("b", "Woman with fever"), c("a-aug0", "A 50 year old man; chest pain", "a")]
    evals = [c("e1", "man 50 chest   pain"), c("e2", "Child with rash"), c("e3", "Child  with rash!", None),
             c("b-aug1", "Febrile woman", "b")]
    s = split_cases(train, evals, eval_fraction=0.0, seed=0)
    assert [x.id for x in s.eval] == ["e2"] and s.dropped_duplicates == 2 and s.dropped_augmented == 1
    assert case_fingerprint(train[0]) == case_fingerprint(evals[0])
    many = [c(f"o{i}", f"scenario {i}") for i in range(20)] + [c(f"o{i}-aug", f"para {i}", f"o{i}") for i in range(20)]
    s = split_cases(many, None, eval_fraction=0.25, seed=3)
    held = {x.id for x in s.eval}
    assert len(held) == 5 and not any("aug" in h for h in held)
    assert not any(x.meta.get("augmented_from") in held for x in s.train)  # a paraphrase never trains its eval twin


def test_no_completions_is_a_clear_error(tmp_path):
    p = tmp_path / "cases.jsonl"
    p.write_text(json.dumps({"id": "1", "clinical_scenario": "s", "questions": ["q?"]}) + "\n")
    with pytest.raises(DataError, match=r"cases.jsonl: no training example has a completion"):
        prepare_data(DataConfig(train=str(p), eval_fraction=0.0))


def test_prepare_notes_missing_index():
    data = prepare_data(DataConfig(train=str(DEMO_CASES), eval_fraction=0.25), seed=0)
    assert any("no --index" in n for n in data.notes)
    assert {r["root_id"] for r in data.train_rows}.isdisjoint({r["root_id"] for r in data.eval_rows})
