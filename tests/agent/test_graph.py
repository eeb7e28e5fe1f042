"""The graph's wiring, with a fake generator and a retriever over a handful of passages (no models)."""

from __future__ import annotations

from typing import ClassVar

from clinrag.agent.context import AgentContext
from clinrag.agent.run import Agent
from clinrag.agent.state import merge_retrieved
from clinrag.core.cases import Case
from clinrag.core.text import content_words
from clinrag.core.types import Generation, Hit, Passage, Query, SubQuestion, Usage
from clinrag.plugins.strategies.base import Translation
from clinrag.plugins.strategies.decomposition import (
    DecompositionStrategy,
    split_compound,
)

PASSAGES = [Passage("p-mi", "Myocardial infarction is diagnosed with troponin and ECG.", "MI"),
            Passage("p-pci", "Primary PCI is the preferred reperfusion for STEMI.", "PCI"),
            Passage("p-asthma", "Asthma is treated with inhaled corticosteroids.", "Asthma")]


class OverlapRetriever:
    """Ranks passages by shared content words; records every call so tests can see the fan-out."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def retrieve(self, queries, k):
        self.calls.append([q.text for q in queries])
        out = []
        for q in queries:
            qw = set(content_words(q.text))
            scored = sorted(PASSAGES, key=lambda p: (-len(qw & set(content_words(p.text))), p.id))
            out.append([Hit(p, float(len(qw & set(content_words(p.text)))), r) for r, p in enumerate(scored[:k])])
        return out


class FakeGenerator:
    name: ClassVar[str] = "fake"
    description: ClassVar[str] = "echoes"
    llm = None

    def __init__(self):
        self.batches = []

    def summarize(self, case):
        return Generation(f"summary of {case.id}", usage=Usage(llm_calls=1, completion_tokens=3))

    def answer(self, case, requests):
        self.batches.append(requests)
        return [Generation(f"answer to {r.sub_question.text}", [r.hits[0].id] if r.hits else [],
                           Usage(llm_calls=1, prompt_tokens=10, completion_tokens=5)) for r in requests]


CASE = Case(id="c1", clinical_scenario="A 58-year-old man has chest pain and ST elevation.",
            questions=["What is the diagnosis of myocardial infarction and how is it treated with primary PCI?",
                       "Is asthma relevant?"])


def run(strategy=None, k=2):
    retriever, gen = OverlapRetriever(), FakeGenerator()
    ctx = AgentContext(retriever=retriever, generator=gen, strategy=strategy or DecompositionStrategy(), k=k)
    return Agent(ctx).answer(CASE), retriever, gen


def test_one_answer_per_question_with_sources_and_usage():
    resp, retriever, gen = run()
    assert [a.index for a in resp.answers] == [1, 2]
    assert [a.question for a in resp.answers] == CASE.questions
    first = resp.answers[0]
    assert [s.id for s in first.sub_questions] == ["q1.1", "q1.2"]  # compound question split
    assert first.sub_questions[0].sources[0].id == "p-mi" and first.sub_questions[1].sources[0].id == "p-pci"
    assert {s.id for s in first.sources} == {"p-mi", "p-pci"}  # cited passages, merged per question
    assert resp.answers[1].sources[0].id == "p-asthma"
    assert resp.summary == "summary of c1"
    # 3 sub-questions → 3 Send branches, one retrieve call each; answers in one batched call
    assert len(retriever.calls) == 3 and len(gen.batches) == 1 and len(gen.batches[0]) == 3
    assert resp.usage.llm_calls == 4 and resp.usage.prompt_tokens == 30 and resp.usage.completion_tokens == 18


class BatchedSummaryGenerator(FakeGenerator):
    """Writes the summary in the answers' call (the hf generator's capability): the graph must not call summarize."""

    def summarize(self, case):
        raise AssertionError("summarize must not be called when the generator summarises with the answers")

    def answer_with_summary(self, case, requests):
        answers = self.answer(case, requests)
        return answers, Generation(f"batched summary of {case.id}", usage=Usage(llm_calls=1, completion_tokens=4))


def test_a_generator_that_summarises_with_the_answers_gets_one_call():
    retriever, gen = OverlapRetriever(), BatchedSummaryGenerator()
    ctx = AgentContext(retriever=retriever, generator=gen, strategy=DecompositionStrategy(), k=2)
    resp = Agent(ctx).answer(CASE)
    assert resp.summary == "batched summary of c1"
    assert len(gen.batches) == 1 and [len(a.sub_questions) for a in resp.answers] == [2, 1]
    assert resp.usage.llm_calls == 4 and resp.usage.completion_tokens == 3 * 5 + 4  # the summary's usage counts


def test_response_markdown_and_json_schema():
    resp, _, _ = run()
    md = resp.to_markdown()
    assert "### 1. What is the diagnosis" in md and "`p-pci` PCI" in md and "summary of c1" in md
    data = resp.model_dump()
    assert data["schema_version"] == 1 and set(data["answers"][0]) == {"index", "question", "answer", "sources",
                                                                       "sub_questions"}


class MultiQueryStub:
    """A strategy whose sub-question has two queries fused by RRF, to exercise fusion in a branch."""

    name: ClassVar[str] = "stub"
    description: ClassVar[str] = ""
    llm_calls_per_question: ClassVar[float] = 0

    def translate(self, case, llm=None, budget=None):
        subs = [SubQuestion(f"q{i + 1}", i, q, (Query(q), Query("PCI reperfusion STEMI", "paraphrase")))
                for i, q in enumerate(case.questions)]
        return Translation(subs, fusion="rrf", rrf_k=60, notes=["stub note"])


def test_branch_fuses_its_queries_and_notes_reach_response():
    resp, retriever, _ = run(MultiQueryStub(), k=3)
    assert all(len(c) == 2 for c in retriever.calls)  # both queries of a sub-question in one retrieve call
    ids = [s.id for s in resp.answers[1].sub_questions[0].sources]
    assert len(ids) == len(set(ids))  # deduplicated by passage id
    assert resp.notes == ["stub note"]


def test_merge_retrieved_dedupes_by_passage_keeping_best_score():
    p = PASSAGES[0]
    merged = merge_retrieved({"q1": [Hit(p, 0.2, 0)]}, {"q1": [Hit(p, 0.9, 0), Hit(PASSAGES[1], 0.5, 1)],
                                                       "q2": [Hit(p, 0.1, 0)]})
    assert [(h.id, h.score, h.rank) for h in merged["q1"]] == [("p-mi", 0.9, 0), ("p-pci", 0.5, 1)]
    assert list(merged) == ["q1", "q2"]


def test_split_compound():
    assert split_compound("What is the most likely diagnosis and how should it be confirmed?") == [
        "What is the most likely diagnosis?", "How should it be confirmed?"]
    assert split_compound("What are the signs and symptoms of asthma?") == ["What are the signs and symptoms of asthma?"]
    assert split_compound("What is X? How is it treated?") == ["What is X?", "How is it treated?"]


def test_mcq_questions_are_not_split():
    case = CASE.model_copy(update={"options": [{"A": "MI", "B": "PE"}, None], "answer_key": ["A", None]})
    subs = DecompositionStrategy().translate(case).sub_questions
    assert [s.id for s in subs] == ["q1", "q2"]


def test_unspecific_question_retrieves_with_scenario():
    subs = DecompositionStrategy().translate(Case(id="x", clinical_scenario="Crushing chest pain with ST elevation.",
                                                  questions=["What is the next step?"])).sub_questions
    assert "ST elevation" in subs[0].queries[0].text
    specific = DecompositionStrategy().translate(CASE).sub_questions[2]
    assert specific.queries[0].text == "Is asthma relevant?" or "asthma" in specific.queries[0].text


class WholeCaseLLM:
    """A scripted chat LLM that replies in the single-pass format (and records what it was asked)."""

    def __init__(self, reply):
        self.reply, self.asked = reply, []

    def chat(self, conversations, *, max_new_tokens=None):
        self.asked.extend(conversations)
        return [Generation(self.reply, usage=Usage(llm_calls=1, prompt_tokens=50, completion_tokens=20))]


class LLMGenerator(FakeGenerator):
    def __init__(self, reply):
        super().__init__()
        self.llm = WholeCaseLLM(reply)


def test_single_pass_mode_one_call_no_retrieval():
    from clinrag.agent.context import AnswerMode

    gen, retriever = LLMGenerator("**Summary:** chest pain.\nAnswers:\n1. STEMI, treat with PCI.\n2) No."), OverlapRetriever()
    ctx = AgentContext(retriever=retriever, generator=gen, strategy=DecompositionStrategy(),
                       answer_mode=AnswerMode.single_pass)
    resp = Agent(ctx).answer(CASE)
    assert resp.strategy == "single_pass" and resp.summary == "chest pain."
    assert [a.answer for a in resp.answers] == ["STEMI, treat with PCI.", "No."]
    assert retriever.calls == [] and gen.batches == [] and len(gen.llm.asked) == 1  # one call, nothing retrieved
    assert "1. What is the diagnosis" in gen.llm.asked[0][-1]["content"]
    assert resp.usage.llm_calls == 1 and resp.notes == []


def test_single_pass_missing_answer_is_noted_and_extractive_is_refused(capsys):
    from clinrag.agent.context import AnswerMode
    from clinrag.cli import main

    gen = LLMGenerator("Summary: s\nAnswers:\n1. only one")
    resp = Agent(AgentContext(retriever=None, generator=gen, strategy=DecompositionStrategy(),
                              answer_mode=AnswerMode.single_pass)).answer(CASE)
    assert len(resp.answers) == 2 and resp.answers[1].answer == "(no answer)"
    assert resp.notes == ["single_pass: the model gave no answer for question(s) [2]"]
    from ..conftest import DEMO_CASES

    assert main(["answer", str(DEMO_CASES), "--answer-mode", "single_pass", "--case-id", "demo-hypothyroidism"]) == 2
    assert "needs an LLM generator; 'extractive' has none" in capsys.readouterr().err
    assert main(["answer", str(DEMO_CASES), "--case-id", "demo-hypothyroidism"]) == 2
    assert "an index is required (--index)" in capsys.readouterr().err
    assert main(["answer", str(DEMO_CASES), "--answer-mode", "both"]) == 2
    assert "unknown answer mode 'both' (valid: per_question, single_pass)" in capsys.readouterr().err


class ShortGenerator(FakeGenerator):
    """Breaks the generator contract: one answer fewer than it was asked for."""

    name: ClassVar[str] = "short"

    def answer(self, case, requests):
        return super().answer(case, requests)[:-1]


class StrategyReturning:
    name: ClassVar[str] = "scripted"
    description: ClassVar[str] = ""
    llm_calls_per_question: ClassVar[float] = 0

    def __init__(self, subs):
        self.subs = subs

    def translate(self, case, llm=None, budget=None):
        return Translation(list(self.subs))


def test_contract_violations_name_the_plugin_and_what_it_broke():
    import pytest
    from clinrag.core.errors import ClinragError, PluginContractError

    ctx = AgentContext(retriever=OverlapRetriever(), generator=ShortGenerator(), strategy=DecompositionStrategy())
    with pytest.raises(PluginContractError, match=r"^generator 'short' broke its contract: answer\(\) returned 2 "
                                                  r"generation\(s\) for 3 request\(s\)"):
        Agent(ctx).answer(CASE)
    q1, q2 = (SubQuestion(f"q{i + 1}", i, q, (Query(q),)) for i, q in enumerate(CASE.questions))
    q3 = SubQuestion("q3", 2, "x", (Query("x"),))
    for subs, broke in [([q1, q2, q3], r"sub-questions serve question index\(es\) \[2\]"),
                        ([q1, q2, q1], r"sub-question ids \['q1'\] are not unique"),
                        ([q1, "q2"], "sub_questions holds str items, not SubQuestion")]:
        ctx = AgentContext(retriever=OverlapRetriever(), generator=FakeGenerator(), strategy=StrategyReturning(subs))
        with pytest.raises(PluginContractError, match=rf"^strategy 'scripted' broke its contract: {broke}"):
            Agent(ctx).answer(CASE)
    assert issubclass(PluginContractError, ClinragError)  # printed by the CLI as one line


def test_context_components_are_typed_by_their_contracts():
    import typing

    from clinrag.plugins.generators.base import ChatLLM, Generator
    from clinrag.plugins.strategies.base import QueryTranslator
    from clinrag.retrieval.retriever import Retriever

    hints = typing.get_type_hints(AgentContext)  # resolvable at run time, as LangGraph's context_schema needs
    assert hints["generator"] is Generator and hints["strategy"] is QueryTranslator
    assert hints["retriever"] == Retriever | None and hints["translator_llm"] == ChatLLM | None
    assert isinstance(OverlapRetriever(), Retriever) and isinstance(FakeGenerator(), Generator)
    assert isinstance(DecompositionStrategy(), QueryTranslator)


def test_json_schemas_resolve():
    # typing.TypedDict state made these raise on Python 3.11 (LangGraph Server and Studio read them).
    from clinrag.agent.graph import build_graph

    graph = build_graph()
    assert "case" in graph.get_input_jsonschema()["properties"]
    assert {"response", "sub_answers", "retrieved"} <= set(graph.get_output_jsonschema()["properties"])


class CitingGenerator(FakeGenerator):
    """Cites one shown passage and two never shown (the prompt's example id, an invented one)."""

    def summarize(self, case):
        return Generation("Inferior STEMI [kb-12].", usage=Usage(llm_calls=1))

    def answer(self, case, requests):
        return [Generation(f"See [{r.hits[0].id}, kb-12] and [made-up-7]; not [A].", [r.hits[0].id], Usage())
                for r in requests]


def test_citations_of_passages_never_shown_are_stripped_and_noted():
    ctx = AgentContext(retriever=OverlapRetriever(), generator=CitingGenerator(), strategy=DecompositionStrategy(),
                       k=1)
    resp = Agent(ctx).answer(CASE)
    assert resp.summary == "Inferior STEMI."
    for qa in resp.answers:
        shown = qa.sub_questions[0].retrieved[0].id
        assert qa.sub_questions[0].answer == f"See [{shown}] and; not [A]."
        assert "kb-12" not in qa.answer and "made-up-7" not in qa.answer
    assert any("[kb-12] (summary)" in n and "[made-up-7] (question 2)" in n for n in resp.notes)
