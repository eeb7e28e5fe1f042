"""The graph's runtime context: the components a run uses, injected per invocation (never stored in state)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clinrag.core.choices import Choice


class AnswerMode(Choice):
    """``per_question`` (default): translate, retrieve per sub-question, answer each, summarise separately.
    ``single_pass``: one LLM call with the whole case in, "Summary + numbered answers" out, no retrieval —
    the format of fine-tuning's ``whole_case`` mode."""

    per_question = "per_question"
    single_pass = "single_pass"


@dataclass
class AgentContext:
    """retriever / generator / strategy are plugin instances; ``translator_llm`` is the LLM strategies use
    (defaults to the generator's own, when it has one); ``k`` passages per sub-question;
    ``llm_budget`` caps the LLM calls query translation may spend per case (None: unlimited);
    ``answer_mode`` picks the per-question graph or the single-pass whole-case call."""

    retriever: Any
    generator: Any
    strategy: Any
    translator_llm: Any = None
    k: int = 5
    llm_budget: int | None = None
    answer_mode: AnswerMode = AnswerMode.per_question

    @property
    def strategy_llm(self) -> Any:
        return self.translator_llm if self.translator_llm is not None else self.generator.llm
