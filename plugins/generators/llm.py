"""What every LLM-backed generator shares: prompts from :mod:`clinrag.core.prompts`, one batched chat call
per case for the answers, one call for the summary, and citation parsing.

Subclasses only provide :attr:`LLMGenerator.llm` (a :class:`~clinrag.plugins.generators.base.ChatLLM`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from clinrag.core.defaults import MAX_NEW_TOKENS
from clinrag.core.prompts import answer_messages, summary_messages
from clinrag.core.types import Generation

from .base import AnswerRequest, ChatLLM

if TYPE_CHECKING:
    from clinrag.core.cases import Case

_BRACKETS = re.compile(r"\[([^\[\]\n]{1,200})\]")
_SPLIT = re.compile(r"[,;]\s*|\s+and\s+")


def parse_citations(text: str, allowed: Iterable[str]) -> list[str]:
    """Passage ids cited as ``[id]`` (or ``[id1, id2]``) in ``text``, in order of first mention.

    Only ids in ``allowed`` (the passages actually shown in the prompt) count: a model inventing
    ``[kb-99]`` must not create a source. Matching ignores case and surrounding quotes/spaces.
    """
    by_key = {a.strip().lower(): a for a in allowed}
    found: list[str] = []
    for group in _BRACKETS.findall(text):
        for part in _SPLIT.split(group):
            key = part.strip().strip("'\"`").strip().lower()
            if key in by_key and by_key[key] not in found:
                found.append(by_key[key])
    return found


# A bracketed part that looks like a passage id (one token with a digit, hyphen, underscore, dot or colon), so prose
# in brackets ("[see above]", "[A]", "[2.5 mg]") is never taken for a citation.
_ID_LIKE = re.compile(r"^(?=.*[\d_:.\-])[\w.:/\-]{1,120}$")


def strip_unknown_citations(text: str, allowed: Iterable[str]) -> tuple[str, list[str]]:
    """``text`` without citations of passages that were not shown (``allowed``), and the ids removed.

    ``[kb-1, kb-99]`` with only ``kb-1`` shown becomes ``[kb-1]``; ``[kb-99]`` alone is removed with the space
    before it. Groups holding anything that does not look like an id are left as written.
    """
    by_key = {a.strip().lower() for a in allowed}
    removed: list[str] = []

    def fix(match: re.Match[str]) -> str:
        parts = [p.strip().strip("'\"`").strip() for p in _SPLIT.split(match.group(1))]
        if not parts or not all(_ID_LIKE.match(p) for p in parts):
            return match.group(0)
        keep = [p for p in parts if p.lower() in by_key]
        removed.extend(p for p in parts if p.lower() not in by_key and p not in removed)
        if len(keep) == len(parts):
            return match.group(0)
        return f"[{', '.join(keep)}]" if keep else ""

    cleaned = _BRACKETS.sub(fix, text)
    if removed:
        cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()
    return cleaned, removed


def request_messages(case: Case, request: AnswerRequest, *, max_chars_per_passage: int = 1200) -> list[dict[str, str]]:
    """The conversation an LLM generator sends for one sub-question — and the prompt fine-tuning trains on
    (:mod:`clinrag.finetune.data` calls this very function)."""
    sq = request.sub_question
    return answer_messages(case, sq.text or request.question, request.hits, options=request.options, facts=sq.facts,
                           max_chars_per_passage=max_chars_per_passage)


class LLMGenerator(ABC):
    """Base for ``hf`` and ``openai``: builds the prompts, batches the answers, parses citations."""

    max_new_tokens: int

    def __init__(self, *, max_new_tokens: int = MAX_NEW_TOKENS, summary_max_new_tokens: int | None = None) -> None:
        if int(max_new_tokens) < 1:
            raise ValueError(f"max_new_tokens must be ≥ 1 (got {max_new_tokens})")
        self.max_new_tokens = int(max_new_tokens)
        self.summary_max_new_tokens = int(summary_max_new_tokens or max_new_tokens)

    @property
    @abstractmethod
    def llm(self) -> ChatLLM:
        """The chat model this generator answers with (subclasses: in-process or remote)."""

    def summarize(self, case: Case) -> Generation:
        return self.finish_summary(self.llm.chat([summary_messages(case)], max_new_tokens=self.summary_max_new_tokens)[0])

    @staticmethod
    def finish_summary(gen: Generation) -> Generation:
        return Generation(gen.text.strip(), [], gen.usage)

    def answer_conversations(self, case: Case, requests: Sequence[AnswerRequest]) -> list[list[dict[str, str]]]:
        """One conversation per sub-question; they share their system + scenario prefix by construction."""
        return [request_messages(case, req) for req in requests]

    def answer(self, case: Case, requests: Sequence[AnswerRequest]) -> list[Generation]:
        if not requests:
            return []
        gens = self.llm.chat(self.answer_conversations(case, requests), max_new_tokens=self.max_new_tokens)
        return self.finish_answers(requests, gens)

    @staticmethod
    def finish_answers(requests: Sequence[AnswerRequest], gens: Sequence[Generation]) -> list[Generation]:
        """The answers' text stripped and their citations parsed (only ids of passages shown to that request)."""
        out = []
        for req, gen in zip(requests, gens):
            text = gen.text.strip()
            out.append(Generation(text, parse_citations(text, (h.id for h in req.hits)), gen.usage))
        return out


def split_usage(total_seconds: float, prompt_tokens: Sequence[int], completion_tokens: Sequence[int]) -> list[Any]:
    """Per-conversation :class:`Usage` for one batched call: each conversation is one LLM call; the batch's
    wall time is split evenly so that summing the usages gives the real elapsed time."""
    from clinrag.core.types import Usage

    n = max(len(prompt_tokens), 1)
    return [Usage(llm_calls=1, prompt_tokens=int(p), completion_tokens=int(c), seconds=total_seconds / n)
            for p, c in zip(prompt_tokens, completion_tokens)]
