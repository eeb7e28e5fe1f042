"""The shared skeleton of the LLM strategies that *expand* each decomposed sub-question with more queries.

``multi_query``, ``rag_fusion``, ``step_back`` and ``hyde`` all start from the rule-based decomposition (so
every input question is served even when the LLM fails), ask the LLM one question per sub-question in a single
batch, parse each reply defensively and rebuild the sub-question's queries. Whatever cannot use the LLM — no
LLM configured, the case's call budget spent, a reply that does not parse — keeps its original query, and the
translation says so in ``notes`` and lists the sub-question in ``fallbacks``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from clinrag.core.defaults import RRF_K
from clinrag.core.types import Query, SubQuestion, Usage

from .base import LLMBudget, Translation, int_option
from .decomposition import decompose
from .llm import ask, budget_note, no_llm_note, parse_note

if TYPE_CHECKING:
    from clinrag.core.cases import Case
    from clinrag.plugins.generators.base import ChatLLM, Message



def anchor_text(case: Case, sq: SubQuestion) -> str:
    """What a rewrite must stay on topic with: the sub-question, its facts and the scenario."""
    return " ".join((sq.text, sq.facts, case.context, case.clinical_scenario))


class ExpandingStrategy(ABC):
    """Base class: subclasses define the prompt (:meth:`conversation`) and how a reply becomes queries
    (:meth:`expand`, returning None when the reply is unusable)."""

    name: ClassVar[str]
    description: ClassVar[str]
    llm_calls_per_question: ClassVar[float] = 1
    fusion: ClassVar[str] = "union"

    def __init__(self, *, max_new_tokens: int = 96, rrf_k: int = RRF_K) -> None:
        self.max_new_tokens = int_option(self.name, "max_new_tokens", max_new_tokens, minimum=1)
        self.rrf_k = int_option(self.name, "rrf_k", rrf_k, minimum=1)

    @abstractmethod
    def conversation(self, case: Case, sq: SubQuestion) -> list[Message]:
        """The LLM conversation asking for this sub-question's extra queries."""

    @abstractmethod
    def expand(self, case: Case, sq: SubQuestion, reply: str) -> tuple[Query, ...] | None:
        """The queries parsed from ``reply`` (None: unusable reply, fall back to the original)."""

    def translate(self, case: Case, llm: ChatLLM | None = None, budget: LLMBudget | None = None) -> Translation:
        start = time.perf_counter()
        subs = decompose(case)
        if llm is None:
            return Translation(subs, fusion=self.fusion, rrf_k=self.rrf_k, notes=[no_llm_note(self.name)],
                               fallbacks=[sq.id for sq in subs])
        batch = ask(llm, [self.conversation(case, sq) for sq in subs], budget=budget,
                    max_new_tokens=self.max_new_tokens)
        out: list[SubQuestion] = []
        skipped: list[str] = []
        failed: list[str] = []
        for sq, reply in zip(subs, batch.outputs):
            queries = None if reply is None else self.expand(case, sq, reply)
            if queries is None:
                (skipped if reply is None else failed).append(sq.id)
                out.append(sq)
            else:
                out.append(replace(sq, queries=queries))
        notes = []
        if skipped:
            notes.append(budget_note(self.name, budget, skipped))
        if failed:
            notes.append(parse_note(self.name, failed))
        usage: Usage = batch.usage
        usage.seconds = time.perf_counter() - start
        return Translation(out, fusion=self.fusion, rrf_k=self.rrf_k, notes=notes, usage=usage,
                           fallbacks=skipped + failed)
