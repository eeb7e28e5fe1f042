"""The response schema (JSON, versioned) and its Markdown rendering.

JSON schema (``schema_version`` 1)::

    {"schema_version": 1, "case_id": str, "strategy": str, "generator": str,
     "summary": str,
     "answers": [{"index": int (1-based), "question": str, "answer": str,
                  "sources": [{"id": str, "title": str, "score": float}],
                  "sub_questions": [{"id": str, "text": str, "answer": str,
                                     "sources": [{"id", "title", "score"}],
                                     "retrieved": [{"id", "title", "score", "doc_id"}]}]}],
     "notes": [str],
     "usage": {"llm_calls": int, "prompt_tokens": int, "completion_tokens": int, "seconds": float}}

``answers`` has exactly one item per input question, in input order. An answer's ``sources`` are the
passages it cites (or, when it cites none, the passages retrieved for it); a sub-question's ``sources`` follow
the same rule, and its ``retrieved`` lists every passage retrieved for it, best first (what retrieval metrics
score; added in schema version 1 with a default, so older responses still load). ``doc_id`` there is the document
a chunk was cut from (null for a passage indexed whole): gold evidence names documents.
"""

from __future__ import annotations

from pydantic import BaseModel

SCHEMA_VERSION = 1


class Source(BaseModel):
    id: str
    title: str = ""
    score: float = 0.0


class RetrievedSource(Source):
    #: The document this chunk belongs to, when the index chunked it (``None``: the passage is the document).
    doc_id: str | None = None


class SubAnswer(BaseModel):
    id: str
    text: str
    answer: str
    sources: list[Source]
    #: Every passage retrieved for this sub-question, in rank order (``sources`` may be only the cited ones).
    retrieved: list[RetrievedSource] = []


class QuestionAnswer(BaseModel):
    index: int
    question: str
    answer: str
    sources: list[Source]
    sub_questions: list[SubAnswer]


class UsageReport(BaseModel):
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class CaseResponse(BaseModel):
    schema_version: int = SCHEMA_VERSION
    case_id: str
    strategy: str
    generator: str
    summary: str
    answers: list[QuestionAnswer]
    notes: list[str] = []
    usage: UsageReport = UsageReport()

    def to_markdown(self) -> str:
        lines = [f"## Case {self.case_id}", "", f"**Summary.** {self.summary}", ""]
        for qa in self.answers:
            lines.append(f"### {qa.index}. {qa.question}")
            lines.append("")
            lines.append(qa.answer)
            lines.append("")
            if qa.sources:
                lines.append("Sources: " + "; ".join(f"`{s.id}` {s.title}".strip() for s in qa.sources))
                lines.append("")
        if self.notes:
            lines.append("> " + "\n> ".join(self.notes))
            lines.append("")
        u = self.usage
        lines.append(f"<sub>strategy `{self.strategy}` · generator `{self.generator}` · {u.llm_calls} LLM calls · "
                     f"{u.prompt_tokens + u.completion_tokens} tokens · {u.seconds:.2f} s</sub>")
        return "\n".join(lines) + "\n"
