"""``none``: the baseline — the whole case text is the one query, for every question.

No decomposition, no LLM: the scenario and all its questions are embedded as a single text, and every input
question is answered from the same retrieved passages. It exists to measure what the other strategies add.
Each input question still gets its own sub-question (so the response keeps one answer per question), all
carrying the *same* query. Note that the embedder truncates long inputs (all-MiniLM-L6-v2 reads 256 word
pieces), so with a long scenario the later questions barely influence retrieval — which is the point of the
baseline. Each branch retrieves for its copy of the query; for a 3-8 question case that is a few extra
encodes of one text (milliseconds), accepted to keep the graph uniform.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from clinrag.core.types import Query, SubQuestion

from .base import LLMBudget, Translation

if TYPE_CHECKING:
    from clinrag.core.cases import Case
    from clinrag.plugins.generators.base import ChatLLM


def case_text(case: Case) -> str:
    """Context, scenario and the numbered questions, as one text."""
    parts = [case.context.strip(), case.clinical_scenario.strip()]
    parts += [f"{i + 1}. {q.strip()}" for i, q in enumerate(case.questions)]
    return "\n".join(p for p in parts if p)


class NoneStrategy:
    name: ClassVar[str] = "none"
    description: ClassVar[str] = ("Baseline: the whole case text is one query shared by every question. No LLM. "
                                  "Use it to measure what the other strategies add.")
    llm_calls_per_question: ClassVar[float] = 0

    def translate(self, case: Case, llm: ChatLLM | None = None, budget: LLMBudget | None = None) -> Translation:
        query = Query(case_text(case), "case")
        subs = [SubQuestion(id=f"q{i + 1}", question_index=i, text=q.strip(), queries=(query,))
                for i, q in enumerate(case.questions)]
        return Translation(subs, fusion="union")
