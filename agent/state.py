"""Graph state. Nodes return partial updates; fields written by parallel branches have reducers."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from clinrag.core.cases import Case
from clinrag.core.types import Generation, Hit, SubQuestion, Usage


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
    answers: sub-question id → the generator's answer.
    summary: the generator's summary of the scenario.
    notes: things the user should know (fallbacks, truncation), appended by any node (reducer).
    usage: what each step spent, appended by any node (reducer); summed in the response.
    response: the composed :class:`~clinrag.agent.response.CaseResponse`.
    """

    case: Case
    sub_questions: list[SubQuestion]
    fusion: tuple[str, int]
    retrieved: Annotated[dict[str, list[Hit]], merge_retrieved]
    answers: dict[str, Generation]
    summary: Generation
    notes: Annotated[list[str], operator.add]
    usage: Annotated[list[Usage], operator.add]
    response: Any


class BranchState(TypedDict):
    """What one Send branch receives: the case, the one sub-question it retrieves for, and the fusion."""

    case: Case
    sub_question: SubQuestion
    fusion: tuple[str, int]
