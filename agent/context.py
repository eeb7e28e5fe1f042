"""The graph's runtime context: the components a run uses, injected per invocation (never stored in state)."""

from __future__ import annotations

from dataclasses import dataclass

from clinrag.core import defaults
from clinrag.core.choices import Choice
from clinrag.plugins.generators.base import ChatLLM, Generator
from clinrag.plugins.strategies.base import QueryTranslator
from clinrag.retrieval.retriever import Retriever


class AnswerMode(Choice):
    """``per_question`` (default): translate, retrieve per sub-question, answer each, summarise separately.
    ``single_pass``: one LLM call with the whole case in, "Summary + numbered answers" out, no retrieval —
    the format of fine-tuning's ``whole_case`` mode."""

    per_question = "per_question"
    single_pass = "single_pass"


@dataclass
class AgentContext:
    """The components, typed by their plugin contracts: ``retriever`` (any :class:`Retriever`), ``generator``
    (a :class:`Generator`), ``strategy`` (a :class:`QueryTranslator`); ``translator_llm`` is the LLM strategies
    use (defaults to the generator's own, when it has one); ``k`` passages per sub-question; ``llm_budget`` caps
    the LLM calls query translation may spend per case (None: unlimited); ``answer_mode`` picks the
    per-question graph or the single-pass whole-case call."""

    retriever: Retriever | None
    generator: Generator
    strategy: QueryTranslator
    translator_llm: ChatLLM | None = None
    k: int = defaults.TOP_K
    llm_budget: int | None = None
    answer_mode: AnswerMode = AnswerMode(defaults.ANSWER_MODE)

    @property
    def strategy_llm(self) -> ChatLLM | None:
        return self.translator_llm if self.translator_llm is not None else self.generator.llm
