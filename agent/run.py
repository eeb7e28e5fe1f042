"""Run the graph on cases: build the components from names, invoke once per case."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinrag.core import defaults
from clinrag.core.cases import Case

from .context import AgentContext, AnswerMode
from .response import CaseResponse

if TYPE_CHECKING:
    from clinrag.plugins.generators.base import ChatLLM, Generator, LoadsChatLLM
    from clinrag.retrieval.options import RetrievalMode
    from clinrag.retrieval.retriever import Retriever


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


def build_generator(name: str, options: dict[str, Any] | None = None, *,
                    retriever: Retriever | None = None) -> Generator:
    """The generator registered under ``name``; one that can share an embedder gets the retriever's (if it has
    one) so the embedding model is loaded once."""
    from clinrag.plugins.generators import generators
    from clinrag.plugins.generators.base import SharesEmbedder

    generator = generators.create(name, **(options or {}))
    if isinstance(generator, SharesEmbedder):
        embedder = getattr(retriever, "embedder", None)
        if embedder is not None:
            generator.share_embedder(embedder)
    return generator


def translator_loader(generator: str | None = None) -> type[LoadsChatLLM]:
    """The generator class that loads a separate query-translation LLM: ``generator``'s own when it can load chat
    LLMs (:class:`~clinrag.plugins.generators.base.LoadsChatLLM`), else
    :data:`~clinrag.core.defaults.TRANSLATOR_GENERATOR`'s."""
    from clinrag.core.errors import PluginError
    from clinrag.plugins.generators import generators
    from clinrag.plugins.generators.base import LoadsChatLLM

    for name in dict.fromkeys(n for n in (generator, defaults.TRANSLATOR_GENERATOR) if n):
        cls = generators.get_class(name)
        if isinstance(cls, LoadsChatLLM):
            return cls
    raise PluginError(f"--translator-model needs a generator plugin that loads chat LLMs; neither {generator!r} "
                      f"nor {defaults.TRANSLATOR_GENERATOR!r} does")


def load_translator_llm(model: str, generator: str | None = None) -> ChatLLM:
    """A query-translation LLM for ``model`` (hub id, folder or .gguf), loaded by :func:`translator_loader`."""
    return translator_loader(generator).load_chat_llm(model)


def build_agent(index: str | Path | Retriever | None, *, strategy: str = defaults.STRATEGY,
                generator: str | Generator = defaults.GENERATOR, k: int = defaults.TOP_K,
                strategy_options: dict[str, Any] | None = None, generator_options: dict[str, Any] | None = None,
                translator_llm: ChatLLM | None = None, translator_model: str | None = None,
                llm_budget: int | None = None, retrieval_mode: str | RetrievalMode = defaults.RETRIEVAL_MODE,
                answer_mode: str | AnswerMode = defaults.ANSWER_MODE) -> Agent:
    """An :class:`Agent` over an index folder (or any :class:`Retriever`) using named plugins.

    ``translator_model`` (hub id, folder or .gguf) loads a separate LLM for query translation (see
    :func:`load_translator_llm`); otherwise strategies use the answering generator's LLM, if it has one.
    ``retrieval_mode`` (dense, bm25, hybrid) applies when ``index`` is a folder. ``answer_mode="single_pass"``
    answers the whole case in one LLM call without retrieval (``index`` may then be None). ``generator`` may be
    a built :class:`Generator` (then ``generator_options`` are not used), so a cached one can be shared.
    """
    from clinrag.core.errors import ClinragError
    from clinrag.plugins.generators import generators
    from clinrag.plugins.strategies import get_strategy
    from clinrag.retrieval.options import RetrievalMode
    from clinrag.retrieval.retriever import IndexRetriever

    # Plugin names and settings are checked before anything heavy (index, models) is loaded.
    strategy_obj = get_strategy(strategy, **(strategy_options or {}))
    generator_name = generator if isinstance(generator, str) else generator.name
    if isinstance(generator, str):
        generators.get_class(generator)
    mode = RetrievalMode.parse(retrieval_mode)
    amode = AnswerMode.parse(answer_mode)
    if index is None and amode is AnswerMode.per_question:
        raise ClinragError("an index is required (--index), except in answer mode single_pass")
    retriever = index if index is None or hasattr(index, "retrieve") else IndexRetriever(index, mode=mode)
    generator_obj = (build_generator(generator, generator_options, retriever=retriever) if isinstance(generator, str)
                     else generator)
    if translator_llm is None and translator_model is not None:
        translator_llm = load_translator_llm(translator_model, generator_name)
    ctx = AgentContext(retriever=retriever, generator=generator_obj, strategy=strategy_obj,
                       translator_llm=translator_llm, k=k, llm_budget=llm_budget, answer_mode=amode)
    return Agent(ctx)
