"""The strategy contract: :class:`QueryTranslator`, its result :class:`Translation`, and the registry.

A strategy gets the case and, when it needs one, an LLM handle (:class:`~clinrag.plugins.generators.ChatLLM`)
with a call budget. It returns sub-questions, each tied to the input question it serves, and how the results
of a sub-question's several queries are fused. A strategy that cannot use its LLM (none configured, budget
spent, unparseable output) falls back to the original question and says so in ``notes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from clinrag.plugins.registry import Registry
from clinrag.types import SubQuestion, Usage

if TYPE_CHECKING:
    from clinrag.cases import Case
    from clinrag.plugins.generators.base import ChatLLM

FUSIONS = ("union", "rrf")


@dataclass
class LLMBudget:
    """How many LLM calls a case may still spend on query translation (``None``: unlimited)."""

    max_calls: int | None = None
    used: int = 0

    def allows(self, n: int = 1) -> bool:
        return self.max_calls is None or self.used + n <= self.max_calls

    def spend(self, n: int = 1) -> None:
        self.used += n


@dataclass
class Translation:
    """A strategy's output.

    ``fusion`` says how the hit lists of one sub-question's queries are combined: ``union`` (dedupe by
    passage id, keep best score) or ``rrf`` (reciprocal-rank fusion with constant ``rrf_k``, 1-based ranks).
    """

    sub_questions: list[SubQuestion]
    fusion: str = "union"
    rrf_k: int = 60
    notes: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r} (valid: {', '.join(FUSIONS)})")


@runtime_checkable
class QueryTranslator(Protocol):
    """What a strategy plugin implements. Constructed with keyword options only; ``__init__`` stays cheap."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: LLM calls per input question this strategy makes (0 for rule-based); shown by ``strategies list``.
    llm_calls_per_question: ClassVar[float]

    def translate(self, case: Case, llm: ChatLLM | None = None, budget: LLMBudget | None = None) -> Translation:
        ...


strategies: Registry[QueryTranslator] = Registry("clinrag.strategies", "strategy")


def get_strategy(name: str, **options: Any) -> QueryTranslator:
    """Create the strategy registered under ``name`` (error lists the valid names)."""
    return strategies.create(name, **options)


def list_strategies() -> list[dict[str, Any]]:
    rows = []
    for name in strategies.names():
        cls = strategies.get_class(name)
        rows.append({"name": name, "description": getattr(cls, "description", ""),
                     "llm_calls_per_question": getattr(cls, "llm_calls_per_question", 0)})
    return rows
