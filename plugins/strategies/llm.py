"""Calling the translation LLM within a case's budget, and accounting for what it cost.

All of a strategy's prompts for one case go out in ONE ``ChatLLM.chat`` batch (one conversation per
sub-question), so a local model runs them as one padded batch. Each conversation counts as one LLM call
against the :class:`LLMBudget`; when the budget cannot cover them all, the first ones (in sub-question
order) are sent and the rest are reported as ``skipped`` so the strategy can fall back for them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clinrag.core.types import Usage

if TYPE_CHECKING:
    from clinrag.plugins.generators.base import ChatLLM, Message

    from .base import LLMBudget


@dataclass
class LLMBatch:
    """Outputs aligned with the conversations asked (None where the budget did not allow the call)."""

    outputs: list[str | None]
    usage: Usage = field(default_factory=Usage)

    @property
    def skipped(self) -> list[int]:
        return [i for i, o in enumerate(self.outputs) if o is None]


def ask(llm: ChatLLM, conversations: Sequence[Sequence[Message]], *, budget: LLMBudget | None,
        max_new_tokens: int) -> LLMBatch:
    """Send as many ``conversations`` as ``budget`` allows in one batch; cost summed into ``usage``."""
    n = len(conversations)
    if budget is not None and budget.max_calls is not None:
        n = max(0, min(n, budget.max_calls - budget.used))
    outputs: list[str | None] = [None] * len(conversations)
    usage = Usage()
    if n == 0:
        return LLMBatch(outputs, usage)
    start = time.perf_counter()
    gens = llm.chat([list(c) for c in conversations[:n]], max_new_tokens=max_new_tokens)
    if len(gens) != n:
        raise RuntimeError(f"{type(llm).__name__}.chat returned {len(gens)} generations for {n} conversations")
    if budget is not None:
        budget.spend(n)
    for i, gen in enumerate(gens):
        outputs[i] = gen.text or ""
        u = gen.usage
        usage = usage + Usage(max(u.llm_calls, 1), u.prompt_tokens, u.completion_tokens, 0.0)
    usage.seconds = time.perf_counter() - start
    return LLMBatch(outputs, usage)


# Notes a strategy adds to its translation when it falls back to the original question.
def no_llm_note(strategy: str) -> str:
    return f"{strategy}: no LLM available; used the original sub-questions"


def budget_note(strategy: str, budget: LLMBudget | None, ids: list[str], *,
                fallback: str = "the original question") -> str:
    cap = budget.max_calls if budget is not None else None
    return f"{strategy}: LLM call budget ({cap} per case) spent; {', '.join(ids)} used {fallback}"


def parse_note(strategy: str, ids: list[str], *, fallback: str = "the original question") -> str:
    return f"{strategy}: could not parse the LLM output for {', '.join(ids)}; used {fallback}"
