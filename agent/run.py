"""Run the graph on cases: build the components from names, invoke once per case."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from clinrag.core.cases import Case

from .context import AgentContext
from .response import CaseResponse


class Agent:
    """Answers cases with one strategy and one generator. The compiled graph and components are reused."""

    def __init__(self, context: AgentContext) -> None:
        self.context = context

    @cached_property
    def graph(self) -> Any:
        from .graph import build_graph

        return build_graph()

    def answer(self, case: Case) -> CaseResponse:
        state = self.graph.invoke({"case": case}, context=self.context)
        return state["response"]

    def answer_all(self, cases: Sequence[Case]) -> Iterator[CaseResponse]:
        for case in cases:
            yield self.answer(case)


def build_agent(index: str | Path | Any | None, *, strategy: str = "decomposition", generator: str = "extractive",
                k: int = 5, strategy_options: dict[str, Any] | None = None,
                generator_options: dict[str, Any] | None = None, translator_llm: Any = None,
                translator_model: str | None = None, llm_budget: int | None = None,
                retrieval_mode: str = "dense", answer_mode: str = "per_question") -> Agent:
    """An :class:`Agent` over an index folder (or any object with ``retrieve``) using named plugins.

    ``translator_model`` (hub id, folder or .gguf) loads a separate ``hf`` LLM for query translation;
    otherwise strategies use the answering generator's LLM, if it has one. ``retrieval_mode`` (dense, bm25,
    hybrid) applies when ``index`` is a folder. ``answer_mode="single_pass"`` answers the whole case in one LLM
    call without retrieval (``index`` may then be None).
    """
    from clinrag.core.errors import ClinragError
    from clinrag.plugins.generators import generators
    from clinrag.plugins.strategies import get_strategy
    from clinrag.retrieval.retriever import IndexRetriever
    from clinrag.retrieval.store import RetrievalMode

    from .context import AnswerMode

    # Plugin names are checked before anything heavy (index, models) is loaded.
    strategy_obj = get_strategy(strategy, **(strategy_options or {}))
    generator_cls = generators.get_class(generator)
    mode = RetrievalMode.parse(retrieval_mode)
    amode = AnswerMode.parse(answer_mode)
    if index is None and amode is AnswerMode.per_question:
        raise ClinragError("an index is required (--index), except in answer mode single_pass")
    retriever = index if index is None or hasattr(index, "retrieve") else IndexRetriever(index, mode=mode)
    gen_opts = dict(generator_options or {})
    if generator == "extractive" and "embedder" not in gen_opts and hasattr(retriever, "embedder"):
        gen_opts["embedder"] = retriever.embedder  # share the loaded embedding model
    if translator_llm is None and translator_model is not None:
        translator_llm = generators.get_class("hf")(model=translator_model).llm
    ctx = AgentContext(retriever=retriever, generator=generator_cls(**gen_opts), strategy=strategy_obj,
                       translator_llm=translator_llm, k=k, llm_budget=llm_budget, answer_mode=amode)
    return Agent(ctx)
