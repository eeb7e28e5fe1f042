"""``step_back``: retrieve for a more generic question beside the specific one; both contexts reach the answer.

"Which antibiotic should this man get?" also retrieves for "How is community-acquired pneumonia treated?".
Pick it for specific, scenario-bound questions whose answer rests on a general principle the passages state
in general terms. The two hit lists are fused by reciprocal-rank fusion, which *interleaves* them: a
passage only one list found scores 1/(rrf_k + rank), so each list's first hit outranks the other list's
second. With k >= 2 the fused top-k therefore always holds passages from both the original and the
step-back retrieval (a score union could drop the generic context entirely, because generic queries score
lower). One LLM call per sub-question.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from clinrag.core import prompts
from clinrag.core.defaults import RRF_K
from clinrag.core.types import Query, SubQuestion

from .expansion import ExpandingStrategy, anchor_text
from .parsing import parse_question

if TYPE_CHECKING:
    from clinrag.core.cases import Case
    from clinrag.plugins.generators.base import Message


class StepBackStrategy(ExpandingStrategy):
    name: ClassVar[str] = "step_back"
    description: ClassVar[str] = ("Adds an LLM-written more generic question per sub-question; both contexts "
                                  "are interleaved (RRF) into the answer. For specific questions resting on a "
                                  "general principle.")
    llm_calls_per_question: ClassVar[float] = 1
    fusion: ClassVar[str] = "rrf"

    def __init__(self, *, max_new_tokens: int = 48, rrf_k: int = RRF_K) -> None:
        super().__init__(max_new_tokens=max_new_tokens, rrf_k=rrf_k)

    def conversation(self, case: Case, sq: SubQuestion) -> list[Message]:
        return prompts.step_back_messages(sq.text, sq.facts)

    def expand(self, case: Case, sq: SubQuestion, reply: str) -> tuple[Query, ...] | None:
        generic = parse_question(reply, anchor=anchor_text(case, sq), exclude=[sq.text])
        if generic is None:
            return None
        return sq.queries + (Query(generic, "step_back"),)
