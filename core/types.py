"""Plain data types shared by retrieval, plugins and the agent graph.

They are frozen dataclasses (cheap, hashable, no validation cost on the hot path); the user-facing
response schema lives in :mod:`clinrag.agent.response`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: One chat message: ``{"role": "system"|"user"|"assistant", "content": str}``.
Message = dict[str, str]


@dataclass(frozen=True)
class Passage:
    """A retrievable unit of text. ``id`` is unique within an index."""

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Hit:
    """A passage returned for a query, with its score and 0-based rank in that result list."""

    passage: Passage
    score: float
    rank: int = 0

    @property
    def id(self) -> str:
        return self.passage.id


@dataclass(frozen=True)
class Query:
    """One text sent to the retriever on behalf of a sub-question.

    ``kind`` says where it came from (``original``, ``paraphrase``, ``step_back``, ``hyde``, ``case``).
    ``embed_texts``, when given, are embedded and averaged instead of ``text`` (HyDE: question + passage).
    ``contrast``: the case's other questions; a dense hit that one of them matches better than this query is
    demoted (sibling contrast, :mod:`clinrag.retrieval.contrast`), so each question keeps its own aspect.
    """

    text: str
    kind: str = "original"
    embed_texts: tuple[str, ...] = ()
    contrast: tuple[str, ...] = ()


@dataclass(frozen=True)
class SubQuestion:
    """A unit of retrieval and answering, tied to the input question it serves (0-based index)."""

    id: str
    question_index: int
    text: str
    queries: tuple[Query, ...]
    facts: str = ""  # scenario facts this sub-question needs, handed to the answer prompt


@dataclass
class Usage:
    """What a step spent. Summed across the graph and reported with every response."""

    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.llm_calls + other.llm_calls, self.prompt_tokens + other.prompt_tokens,
                     self.completion_tokens + other.completion_tokens, self.seconds + other.seconds)

    def as_dict(self) -> dict[str, float]:
        return {"llm_calls": self.llm_calls, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "seconds": round(self.seconds, 4)}


@dataclass
class Generation:
    """A generator's output for one request: text, the passage ids it cites, and its cost."""

    text: str
    cited_ids: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
