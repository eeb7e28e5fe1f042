"""The strategy contract: :class:`QueryTranslator`, its result :class:`Translation`, and the registry.

A strategy gets the case and, when it needs one, an LLM handle (:class:`~clinrag.plugins.generators.ChatLLM`)
with a call budget. It returns sub-questions, each tied to the input question it serves, and how the results
of a sub-question's several queries are fused. A strategy that cannot use its LLM (none configured, budget
spent, unparseable output) falls back to the original question and says so in ``notes``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from clinrag.core.defaults import FUSION, RRF_K
from clinrag.core.errors import ClinragError, PluginContractError
from clinrag.core.types import SubQuestion, Usage
from clinrag.plugins.registry import Registry

if TYPE_CHECKING:
    from clinrag.core.cases import Case
    from clinrag.plugins.generators.base import ChatLLM

FUSIONS = ("union", "rrf")


class StrategyOptionError(ClinragError, ValueError):
    """A strategy option (``--strategy-option KEY=VALUE``) is unknown or out of range."""


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
    fusion: str = FUSION
    rrf_k: int = RRF_K
    notes: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    #: ids of sub-questions that fell back to their original query (no LLM, budget spent, unparseable output)
    fallbacks: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:  # the strategy building it is named where its output is checked
            raise PluginContractError("strategy", None, f"unknown fusion {self.fusion!r} "
                                                        f"(valid: {', '.join(FUSIONS)})")


def check_translation(strategy: str, translation: Any, case: Case) -> Translation:
    """``translation`` if it keeps the contract for ``case``: a :class:`Translation` whose sub-questions are
    :class:`SubQuestion` s with unique ids, each serving an existing question, every question served by at
    least one. Otherwise a :class:`PluginContractError` naming ``strategy`` and what it broke."""

    def broke(what: str) -> PluginContractError:
        return PluginContractError("strategy", strategy, f"{what} (case {case.id!r})")

    if not isinstance(translation, Translation):
        raise broke(f"translate() returned {type(translation).__name__}, not a Translation")
    subs = translation.sub_questions
    wrong = sorted({type(sq).__name__ for sq in subs if not isinstance(sq, SubQuestion)})
    if wrong:
        raise broke(f"sub_questions holds {', '.join(wrong)} items, not SubQuestion")
    if translation.fusion not in FUSIONS:  # set after construction, past __post_init__
        raise broke(f"unknown fusion {translation.fusion!r} (valid: {', '.join(FUSIONS)})")
    ids = [sq.id for sq in subs]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise broke(f"sub-question ids {duplicated} are not unique")
    outside = sorted({sq.question_index for sq in subs if not 0 <= sq.question_index < case.n_questions})
    if outside:
        raise broke(f"sub-questions serve question index(es) {outside}; the case has {case.n_questions} question(s)")
    served = {sq.question_index for sq in subs}
    missing = [i + 1 for i in range(case.n_questions) if i not in served]
    if missing:  # a strategy must serve every question; fail loudly rather than drop one
        raise broke(f"produced no sub-question for question(s) {missing}")
    return translation


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
    """Create the strategy registered under ``name`` (errors list the valid names, or the valid options)."""
    cls = strategies.get_class(name)
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # a builtin or C-level factory: let the call speak for itself
        params = None
    if params is not None and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        valid = [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise StrategyOptionError(f"strategy {name!r} has no option {', '.join(map(repr, unknown))} "
                                      f"(valid: {', '.join(valid) or 'none'})")
    return cls(**options)


def list_strategies() -> list[dict[str, Any]]:
    rows = []
    for name in strategies.names():
        cls = strategies.get_class(name)
        rows.append({"name": name, "description": getattr(cls, "description", ""),
                     "llm_calls_per_question": getattr(cls, "llm_calls_per_question", 0)})
    return rows


def int_option(strategy: str, name: str, value: Any, *, minimum: int) -> int:
    """An integer option checked for type and range (``--strategy-option`` values arrive JSON-decoded)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise StrategyOptionError(f"strategy {strategy!r}: option {name} must be an integer >= {minimum}, "
                                  f"got {value!r}")
    return value
