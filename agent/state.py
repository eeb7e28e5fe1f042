"""Graph state. Nodes return partial updates; fields written by parallel branches have reducers.

``TypedDict`` comes from ``typing_extensions``: pydantic cannot read a ``typing.TypedDict`` on Python < 3.12, and
LangGraph's ``get_input_jsonschema()``/``get_output_jsonschema()`` (so LangGraph Server and Studio) go through
pydantic.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from clinrag.core.cases import Case
from clinrag.core.types import Generation, Hit, SubQuestion, Usage
from typing_extensions import TypedDict


def merge_retrieved(left: dict[str, list[Hit]] | None, right: dict[str, list[Hit]] | None) -> dict[str, list[Hit]]:
    """Merge per-sub-question hit lists from parallel branches, deduplicating by passage id.

    A passage retrieved twice for the same sub-question keeps its best score; lists stay sorted by score.
    """
    out = {k: list(v) for k, v in (left or {}).items()}
    for sid, hits in (right or {}).items():
        best: dict[str, Hit] = {h.id: h for h in out.get(sid, [])}
        for h in hits:
            if h.id not in best or h.score > best[h.id].score:
                best[h.id] = h
        ordered = sorted(best.values(), key=lambda h: (-h.score, h.id))
        out[sid] = [Hit(h.passage, h.score, r) for r, h in enumerate(ordered)]
    return out


class CaseState(TypedDict, total=False):
    """State of one case moving through the graph.

    case: the input case (never modified).
    sub_questions: what the strategy produced; each is tied to the question it serves.
    fusion: (method, rrf_k) combining the hit lists of one sub-question's several queries.
    retrieved: sub-question id → hits, merged from the parallel retrieve branches (reducer).
    sub_answers: sub-question id → the generator's answer.
    summary_generation: the generator's summary of the scenario.
    step_notes: things the user should know (fallbacks, truncation), appended by any node (reducer).
    step_usage: what each step spent, appended by any node (reducer); summed in the response.

    The working keys are named apart from the response's (``answers``, ``summary``, ``notes``, ``usage``), so a
    graph whose output is the response itself (LangGraph Server's, in ``clinrag.serving``) can share this state.
    response: the composed :class:`~clinrag.agent.response.CaseResponse`.
    """

    case: Case
    sub_questions: list[SubQuestion]
    fusion: tuple[str, int]
    retrieved: Annotated[dict[str, list[Hit]], merge_retrieved]
    sub_answers: dict[str, Generation]
    summary_generation: Generation
    step_notes: Annotated[list[str], operator.add]
    step_usage: Annotated[list[Usage], operator.add]
    response: Any


class BranchState(TypedDict):
    """What one Send branch receives: the case, the one sub-question it retrieves for, and the fusion."""

    case: Case
    sub_question: SubQuestion
    fusion: tuple[str, int]
