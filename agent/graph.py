"""The LangGraph graph: translate → Send one retrieve branch per sub-question → answer → compose.

The scenario summary is written in parallel with translation and joins at ``compose``, unless the generator
writes it together with the answers (:class:`~clinrag.plugins.generators.base.SummarizesWithAnswers`, e.g.
``hf``: one batched decode sharing the scenario prefix); then ``summarize`` passes and ``answer`` does both.
Components (retriever, generator, strategy) come from the runtime context (:class:`AgentContext`), never from state::

    START ─┬─ translate ──Send×N──▶ retrieve ──▶ answer ─┬─▶ compose ─▶ END
           ├─ summarize ──────────────────────────────────┤
           └─ whole_case (answer_mode=single_pass) ────────┘

In ``single_pass`` mode one LLM call reads the whole case and writes "Summary: … Answers: 1. … 2. …" (the
format fine-tuning's ``whole_case`` mode trains); nothing is retrieved.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from clinrag.core.defaults import FUSION, RRF_K
from clinrag.core.errors import ClinragError, PluginContractError
from clinrag.core.prompts import parse_whole_case, whole_case_messages
from clinrag.core.types import Generation, Query, SubQuestion, Usage
from clinrag.plugins.generators.base import AnswerRequest, SummarizesWithAnswers, check_generations
from clinrag.plugins.generators.llm import strip_unknown_citations
from clinrag.plugins.strategies.base import LLMBudget, check_translation
from clinrag.retrieval.fusion import retrieve_fused
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from .context import AgentContext, AnswerMode
from .response import (
    CaseResponse,
    QuestionAnswer,
    RetrievedSource,
    Source,
    SubAnswer,
    UsageReport,
)
from .state import BranchState, CaseState


def translate(state: CaseState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    start = time.perf_counter()
    try:
        translation = ctx.strategy.translate(state["case"], ctx.strategy_llm, LLMBudget(ctx.llm_budget))
    except PluginContractError as exc:  # e.g. a Translation built with an unknown fusion: say which strategy
        raise exc.naming(ctx.strategy.name) from None
    translation = check_translation(ctx.strategy.name, translation, state["case"])
    usage = translation.usage
    usage.seconds = max(usage.seconds, time.perf_counter() - start)
    return {"sub_questions": translation.sub_questions, "fusion": (translation.fusion, translation.rrf_k),
            "step_notes": list(translation.notes), "step_usage": [usage]}


def fan_out(state: CaseState) -> list[Send]:
    return [Send("retrieve", {"case": state["case"], "sub_question": sq, "fusion": state["fusion"]})
            for sq in state["sub_questions"]]


def retrieve(branch: BranchState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    sq = branch["sub_question"]
    method, rrf_k = branch["fusion"]
    return {"retrieved": {sq.id: retrieve_fused(ctx.retriever, sq.queries, ctx.k, method, rrf_k=rrf_k)}}


def summarize(state: CaseState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    generator = runtime.context.generator
    if isinstance(generator, SummarizesWithAnswers):
        return {}  # written by ``answer``, in the same call as the answers
    gen = check_generations(generator.name, [generator.summarize(state["case"])], 1, "summarize")[0]
    return {"summary_generation": gen, "step_usage": [gen.usage]}


def answer(state: CaseState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    case = state["case"]
    requests = [AnswerRequest(sq, case.questions[sq.question_index], tuple(state["retrieved"].get(sq.id, [])),
                              case.reference("options", sq.question_index) if case.options else None)
                for sq in state["sub_questions"]]
    generator = runtime.context.generator
    update: dict[str, Any] = {}
    if isinstance(generator, SummarizesWithAnswers):
        answers, summary = generator.answer_with_summary(case, requests)
        summary = check_generations(generator.name, [summary], 1, "answer_with_summary")[0]
        update = {"summary_generation": summary}
    else:
        answers = generator.answer(case, requests)
    gens = check_generations(generator.name, answers, len(requests), "answer")
    usage = [g.usage for g in gens] + ([update["summary_generation"].usage] if update else [])
    return {**update, "sub_answers": {sq.id: g for sq, g in zip(state["sub_questions"], gens)}, "step_usage": usage}


def _source(hit: Any) -> Source:
    return Source(id=hit.id, title=hit.passage.title, score=round(hit.score, 4))


def _retrieved(hit: Any) -> RetrievedSource:
    doc_id = hit.passage.metadata.get("doc_id")
    return RetrievedSource(id=hit.id, title=hit.passage.title, score=round(hit.score, 4),
                           doc_id=None if doc_id is None else str(doc_id))


def _sources(hits: list[Any], cited: list[str]) -> list[Source]:
    by_id = {h.id: h for h in hits}
    chosen = [by_id[c] for c in cited if c in by_id] or hits
    return [_source(h) for h in chosen]


def compose(state: CaseState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx, case = runtime.context, state["case"]
    answers, unshown = [], []  # citations of passages the model was never shown are removed from the text
    for i, question in enumerate(case.questions):
        subs = [sq for sq in state["sub_questions"] if sq.question_index == i]
        sub_answers, sources, texts = [], {}, []
        for sq in subs:
            gen, hits = state["sub_answers"][sq.id], state["retrieved"].get(sq.id, [])
            srcs = _sources(hits, gen.cited_ids)
            text, removed = strip_unknown_citations(gen.text.strip(), (h.id for h in hits))
            unshown += [f"[{r}] (question {i + 1})" for r in removed]
            sub_answers.append(SubAnswer(id=sq.id, text=sq.text, answer=text, sources=srcs,
                                         retrieved=[_retrieved(h) for h in hits]))
            texts.append(text)
            for s in srcs:
                sources.setdefault(s.id, s)
        answers.append(QuestionAnswer(index=i + 1, question=question, answer="\n\n".join(texts),
                                      sources=list(sources.values()), sub_questions=sub_answers))
    summary, removed = strip_unknown_citations(state["summary_generation"].text.strip(), ())  # the summary is shown none
    unshown += [f"[{r}] (summary)" for r in removed]
    notes = list(dict.fromkeys(state.get("step_notes", [])))
    if unshown:
        notes.append(f"removed citations of passages that were not retrieved for it: {', '.join(unshown)}")
    total = sum(state.get("step_usage", []), Usage())
    strategy = ctx.strategy.name if ctx.answer_mode is AnswerMode.per_question else "single_pass"
    response = CaseResponse(case_id=case.id, strategy=strategy, generator=ctx.generator.name,
                            summary=summary, answers=answers, notes=notes,
                            usage=UsageReport(**total.as_dict()))
    return {"response": response}


def start(state: CaseState, runtime: Runtime[AgentContext]) -> list[str]:
    if runtime.context.answer_mode is AnswerMode.single_pass:
        return ["whole_case"]
    return ["translate", "summarize"]


def whole_case(state: CaseState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Single pass: the whole case in one LLM call, parsed back into a summary and one answer per question."""
    ctx, case = runtime.context, state["case"]
    llm = ctx.generator.llm
    if llm is None:
        raise ClinragError(f"answer mode 'single_pass' needs an LLM generator; {ctx.generator.name!r} has none "
                           f"(use --generator hf or openai)")
    gen = llm.chat([whole_case_messages(case)])[0]
    summary, answers = parse_whole_case(gen.text, case.n_questions)
    notes = []
    missing = [i + 1 for i, a in enumerate(answers) if not a.strip()]
    if missing:
        notes.append(f"single_pass: the model gave no answer for question(s) {missing}")
    subs = [SubQuestion(f"q{i + 1}", i, q, (Query(q, "case"),)) for i, q in enumerate(case.questions)]
    per_question = {sq.id: Generation(a.strip() or "(no answer)") for sq, a in zip(subs, answers)}
    return {"sub_questions": subs, "fusion": (FUSION, RRF_K), "retrieved": {}, "sub_answers": per_question,
            "summary_generation": Generation(summary.strip()), "step_notes": notes, "step_usage": [gen.usage]}


#: The agent's nodes by name; :func:`add_agent_nodes` wires them.
NODES: dict[str, Callable[..., Any]] = {"translate": translate, "summarize": summarize, "retrieve": retrieve,
                                        "answer": answer, "whole_case": whole_case, "compose": compose}


def add_agent_nodes(builder: StateGraph, *, after: str = START,
                    wrap: Callable[[str, Callable[..., Any]], Callable[..., Any]] | None = None) -> StateGraph:
    """Add the agent's nodes and edges to ``builder``, starting after node ``after`` and ending at END.

    ``wrap(name, node)`` may replace each node (LangGraph Server's graph resolves its JSON settings into an
    :class:`AgentContext` this way), so every graph that answers cases shares this one wiring."""
    for name, node in NODES.items():
        builder.add_node(name, wrap(name, node) if wrap else node)
    builder.add_conditional_edges(after, start, ["translate", "summarize", "whole_case"])
    builder.add_conditional_edges("translate", fan_out, ["retrieve"])
    builder.add_edge("retrieve", "answer")
    builder.add_edge(["answer", "summarize"], "compose")
    builder.add_edge("whole_case", "compose")
    builder.add_edge("compose", END)
    return builder


def build_graph() -> Any:
    """The in-process graph: input ``{"case": Case}``, components in the :class:`AgentContext`, output
    ``{"response": CaseResponse, ...}``."""
    return add_agent_nodes(StateGraph(CaseState, context_schema=AgentContext)).compile()
