"""The graph's runtime context: the components a run uses, injected per invocation (never stored in state)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class AgentContext:
    """retriever / generator / strategy are plugin instances; ``translator_llm`` is the LLM strategies use
    (defaults to the generator's own, when it has one); ``k`` passages per sub-question;
    ``llm_budget`` caps the LLM calls query translation may spend per case (None: unlimited)."""

    retriever: Any
    generator: Any
    strategy: Any
    translator_llm: Any = None
    k: int = 5
    llm_budget: int | None = None

    @property
    def strategy_llm(self) -> Any:
        return self.translator_llm if self.translator_llm is not None else self.generator.llm
