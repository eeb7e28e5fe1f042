"""Strategy wiring with a scripted ChatLLM: prompts batched, replies parsed, fallbacks noted, budget kept.

Real-model behaviour (SmolLM2) is in test_smollm2.py; here a fake LLM returns chosen replies so each path
(good reply, junk reply, no LLM, budget spent) is checked exactly.
"""

from __future__ import annotations

from typing import ClassVar

import pytest
from clinrag.agent.context import AgentContext
from clinrag.agent.run import Agent
from clinrag.core.cases import Case
from clinrag.core.types import Generation, Hit, Passage, Usage
from clinrag.plugins.strategies import LLMBudget, get_strategy, list_strategies
from clinrag.plugins.strategies.base import StrategyOptionError
from clinrag.plugins.strategies.none import case_text

CASE = Case(id="pna", context="Emergency department",
            clinical_scenario="A 74-year-old man has productive cough, fever and confusion. The chest X-ray shows "
                              "right lower lobe consolidation.",
            questions=["What is the most likely diagnosis and how should it be treated?",
                       "Which empirical antibiotic regimen is appropriate for pneumonia?"])
# decomposition: q1.1, q1.2 (compound split), q2


class ScriptedLLM:
    """Answers each conversation with ``reply(user_message)``; records every batch it was sent."""

    def __init__(self, reply):
        self.reply = reply
        self.batches: list[list[list[dict[str, str]]]] = []

    def chat(self, conversations, *, max_new_tokens=None):
        self.batches.append([list(c) for c in conversations])
        return [Generation(self.reply(c[-1]["content"]), usage=Usage(1, 40, 12, 0.01)) for c in conversations]


def paraphrases(user: str) -> str:
    if "antibiotic" in user:
        return '["Which antibiotics treat community-acquired pneumonia?", "What is empirical therapy for pneumonia?"]'
    if "diagnosis" in user:
        return '["What diagnosis explains cough, fever and consolidation?", "Which disease causes lobar consolidation?"]'
    return '["How is lobar pneumonia with consolidation treated?", "What is the treatment of cough and fever?"]'


def test_registry_lists_every_builtin_with_llm_calls():
    rows = {r["name"]: r for r in list_strategies()}
    assert {"decomposition", "multi_query", "rag_fusion", "step_back", "hyde", "none"} <= set(rows)
    assert rows["decomposition"]["llm_calls_per_question"] == 0 and rows["none"]["llm_calls_per_question"] == 0
    assert all(rows[n]["llm_calls_per_question"] == 1 for n in ("multi_query", "rag_fusion", "step_back", "hyde"))
    assert all(r["description"] for r in rows.values())


def test_multi_query_batches_one_call_and_unions():
    llm = ScriptedLLM(paraphrases)
    t = get_strategy("multi_query", n=2).translate(CASE, llm, LLMBudget())
    assert len(llm.batches) == 1 and len(llm.batches[0]) == 3  # one batch, one conversation per sub-question
    assert [sq.id for sq in t.sub_questions] == ["q1.1", "q1.2", "q2"]
    q2 = t.sub_questions[2]
    assert [q.kind for q in q2.queries] == ["original", "paraphrase", "paraphrase"]
    assert q2.queries[1].text == "Which antibiotics treat community-acquired pneumonia?"
    assert t.fusion == "union" and t.notes == [] and t.fallbacks == []
    assert (t.usage.llm_calls, t.usage.prompt_tokens, t.usage.completion_tokens) == (3, 120, 36)
    assert t.usage.seconds > 0


def test_rag_fusion_uses_rrf_with_configured_k():
    t = get_strategy("rag_fusion", n=2, rrf_k=10).translate(CASE, ScriptedLLM(paraphrases))
    assert t.fusion == "rrf" and t.rrf_k == 10
    assert all(len(sq.queries) == 3 for sq in t.sub_questions)


def test_step_back_adds_a_generic_query():
    llm = ScriptedLLM(lambda u: "General question: How is community-acquired pneumonia treated?")
    t = get_strategy("step_back").translate(CASE, llm)
    q2 = t.sub_questions[2]
    assert [(q.kind, q.text) for q in q2.queries][1] == ("step_back", "How is community-acquired pneumonia treated?")
    assert t.fusion == "rrf"


def test_hyde_embeds_question_and_passage_together():
    passage = ("Community-acquired pneumonia with confusion is treated with an intravenous beta-lactam plus a "
               "macrolide, started within one hour.")
    t = get_strategy("hyde", max_words=12).translate(CASE, ScriptedLLM(lambda u: passage))
    (q,) = t.sub_questions[2].queries
    assert q.kind == "hyde" and q.text == CASE.questions[1]
    assert q.embed_texts == (CASE.questions[1], " ".join(passage.split()[:12]))


def test_unparseable_replies_fall_back_and_are_noted():
    junk = ScriptedLLM(lambda u: "1. 1.1.1.1: 1.1.1.1.1: 1.1.1.1.1:")
    for name in ("multi_query", "rag_fusion", "step_back", "hyde"):
        t = get_strategy(name).translate(CASE, junk)
        assert t.fallbacks == ["q1.1", "q1.2", "q2"], name
        assert t.notes == [f"{name}: could not parse the LLM output for q1.1, q1.2, q2; used the original question"]
        assert [sq.queries for sq in t.sub_questions] == [sq.queries for sq in get_strategy("decomposition")
                                                          .translate(CASE).sub_questions]
        assert t.usage.llm_calls == 3  # the calls were spent even though they failed


def test_no_llm_falls_back_to_decomposition():
    for name in ("multi_query", "rag_fusion", "step_back", "hyde"):
        t = get_strategy(name).translate(CASE, None, LLMBudget())
        assert t.notes == [f"{name}: no LLM available; used the original sub-questions"]
        assert len(t.sub_questions) == 3 and t.usage.llm_calls == 0


def test_budget_caps_calls_per_case():
    llm, budget = ScriptedLLM(paraphrases), LLMBudget(max_calls=1)
    t = get_strategy("multi_query").translate(CASE, llm, budget)
    assert len(llm.batches[0]) == 1 and budget.used == 1 and t.usage.llm_calls == 1
    assert len(t.sub_questions[0].queries) == 3 and len(t.sub_questions[2].queries) == 1
    assert t.fallbacks == ["q1.2", "q2"]
    assert t.notes == ["multi_query: LLM call budget (1 per case) spent; q1.2, q2 used the original question"]
    none_left = ScriptedLLM(paraphrases)
    t0 = get_strategy("hyde").translate(CASE, none_left, LLMBudget(max_calls=0))
    assert none_left.batches == [] and len(t0.fallbacks) == 3


def test_decomposition_refine_with_llm_and_fallbacks():
    def reply(user: str) -> str:
        if "antibiotic" in user:
            return "I am not sure."  # unusable: q2 keeps its rule-based form
        return ('["What is the most likely diagnosis of cough, fever and consolidation?", '
                '"How should the consolidation and fever be treated?", "What is the best pizza topping?", '
                '"How should legionella pneumonia be treated?"]')

    llm = ScriptedLLM(reply)
    t = get_strategy("decomposition", refine=True).translate(CASE, llm, LLMBudget())
    assert [(sq.id, sq.text) for sq in t.sub_questions] == [
        ("q1.1", "What is the most likely diagnosis of cough, fever and consolidation?"),
        # pizza: off topic; legionella: a term foreign to the case (drift, or a typo like SmolLM2's "qSFA")
        ("q1.2", "How should the consolidation and fever be treated?"),
        ("q2", CASE.questions[1])]
    assert t.fallbacks == ["q2"] and "decomposition: could not parse the LLM output for q2" in t.notes[0]
    assert t.usage.llm_calls == 2  # one call per input question
    # without refine the LLM is never called
    silent = ScriptedLLM(reply)
    assert get_strategy("decomposition").translate(CASE, silent).usage.llm_calls == 0 and silent.batches == []
    # refine without an LLM: rule-based split, noted
    t2 = get_strategy("decomposition", refine=True).translate(CASE, None)
    assert t2.notes == ["decomposition: no LLM available; used the original sub-questions"]


def test_decomposition_refine_skips_multiple_choice_questions():
    mcq = CASE.model_copy(update={"options": [None, {"A": "Amoxicillin", "B": "Co-amoxiclav plus clarithromycin"}]})
    llm = ScriptedLLM(lambda u: '["What is the diagnosis of cough with consolidation?"]')
    t = get_strategy("decomposition", refine=True).translate(mcq, llm)
    assert len(llm.batches[0]) == 1 and [sq.id for sq in t.sub_questions] == ["q1", "q2"]


def test_none_is_one_whole_case_query_per_question():
    t = get_strategy("none").translate(CASE, ScriptedLLM(paraphrases))
    assert [(sq.id, sq.question_index, sq.text) for sq in t.sub_questions] == [
        ("q1", 0, CASE.questions[0]), ("q2", 1, CASE.questions[1])]
    assert len({sq.queries for sq in t.sub_questions}) == 1
    (q,) = t.sub_questions[0].queries
    assert q.kind == "case" and q.text == case_text(CASE)
    assert "Emergency department" in q.text and "2. Which empirical" in q.text and t.usage.llm_calls == 0


def test_options_are_checked():
    with pytest.raises(StrategyOptionError, match=r"no option 'k' \(valid: n, max_new_tokens\)"):
        get_strategy("multi_query", k=3)
    with pytest.raises(StrategyOptionError, match="n must be an integer >= 1"):
        get_strategy("rag_fusion", n=0)
    with pytest.raises(StrategyOptionError, match="refine must be true or false"):
        get_strategy("decomposition", refine="yes")


# -- in the graph --------------------------------------------------------------------------------------------

GENERIC = [Passage(f"g{i}", f"generic pneumonia text {i}") for i in range(4)]
SPECIFIC = [Passage(f"s{i}", f"specific antibiotic text {i}") for i in range(4)]


class KindRetriever:
    """Original queries find the 'specific' passages with high scores; step-back queries the 'generic'
    ones with LOWER scores — a score union would keep only the specific ones."""

    def retrieve(self, queries, k):
        out = []
        for q in queries:
            pool, base = (GENERIC, 0.3) if q.kind == "step_back" else (SPECIFIC, 0.9)
            out.append([Hit(p, base - 0.01 * r, r) for r, p in enumerate(pool[:k])])
        return out


class RecordingGenerator:
    name: ClassVar[str] = "recording"
    description: ClassVar[str] = ""

    def __init__(self, llm=None):
        self.llm, self.requests = llm, []

    def summarize(self, case):
        return Generation("summary")

    def answer(self, case, requests):
        self.requests.extend(requests)
        return [Generation("answer", [h.id for h in r.hits]) for r in requests]


@pytest.mark.parametrize("k", [2, 3, 4])
def test_step_back_context_reaches_the_answer_beside_the_original(k):
    llm = ScriptedLLM(lambda u: "What are the common causes of fever with lung consolidation?")
    gen = RecordingGenerator(llm)
    ctx = AgentContext(retriever=KindRetriever(), generator=gen, strategy=get_strategy("step_back"), k=k)
    resp = Agent(ctx).answer(CASE)
    assert resp.notes == [] and len(gen.requests) == 3
    for req in gen.requests:
        ids = [h.id for h in req.hits]
        assert len(ids) == k and any(i.startswith("g") for i in ids) and any(i.startswith("s") for i in ids)
    assert resp.usage.llm_calls == 3
    # per-sub-question sources survive to the response
    assert {s.id[0] for s in resp.answers[1].sub_questions[0].sources} == {"g", "s"}


def test_translator_llm_differs_from_generator_and_notes_reach_response():
    translator = ScriptedLLM(lambda u: "1. 1.1.1:")
    gen = RecordingGenerator(llm=None)
    ctx = AgentContext(retriever=KindRetriever(), generator=gen, strategy=get_strategy("multi_query"),
                       translator_llm=translator, k=2, llm_budget=2)
    resp = Agent(ctx).answer(CASE)
    assert len(translator.batches[0]) == 2  # the budget of 2 calls per case
    assert resp.notes == ["multi_query: LLM call budget (2 per case) spent; q2 used the original question",
                          "multi_query: could not parse the LLM output for q1.1, q1.2; used the original question"]
    assert resp.usage.llm_calls == 2 and resp.usage.prompt_tokens == 80
