"""``decomposition`` (default): one sub-question per input question, compound questions split further.

Rule-based, no LLM call. "What is the most likely diagnosis and how should it be confirmed?" becomes two
sub-questions serving the same input question. Each sub-question carries the scenario facts that share
words with it; a question that names no topic of its own ("What is the next step?") or leans on a pronoun
is retrieved together with the scenario, because on its own it would retrieve nothing specific.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from clinrag.text import content_words, has_pronoun, sentences, topical_words, truncate_words
from clinrag.types import Query, SubQuestion

from .base import LLMBudget, Translation

if TYPE_CHECKING:
    from clinrag.cases import Case
    from clinrag.plugins.generators.base import ChatLLM

_INTERROGATIVE = r"(?:what|how|which|when|why|where|who|whom|whose|is|are|was|were|should|does|do|did|can|could|would|will|has|have)"
# "… X and how is it treated?" — split only when a new interrogative clause follows "and"/"; "/"? ".
_COMPOUND = re.compile(rf"\s*(?:,?\s+and\s+|;\s*|\?\s+)(?={_INTERROGATIVE}\b)", re.IGNORECASE)
_STARTS_INTERROGATIVE = re.compile(rf"^\s*{_INTERROGATIVE}\b", re.IGNORECASE)


def split_compound(question: str) -> list[str]:
    """Split a compound question into its interrogative clauses; a simple question comes back unchanged."""
    if not _STARTS_INTERROGATIVE.match(question):
        return [question.strip()]
    parts = [p.strip(" ,;") for p in _COMPOUND.split(question) if p and p.strip(" ,;")]
    if len(parts) < 2:
        return [question.strip()]
    out = []
    for p in parts:
        p = p[0].upper() + p[1:]
        out.append(p if p.endswith("?") else p.rstrip(".") + "?")
    return out


def scenario_facts(case: Case, question: str, *, max_sentences: int = 3) -> str:
    """Scenario sentences sharing topical words with the question; the opening sentence if none do."""
    sents = sentences(case.clinical_scenario)
    if not sents:
        return ""
    q = set(content_words(question))
    scored = [(len(q & set(content_words(s))), i, s) for i, s in enumerate(sents)]
    chosen = sorted((t for t in scored if t[0] > 0), key=lambda t: (-t[0], t[1]))[:max_sentences]
    if not chosen:
        return sents[0]
    return " ".join(s for _, _, s in sorted(chosen, key=lambda t: t[1]))


def needs_scenario(question: str) -> bool:
    return len(topical_words(question)) < 2 or has_pronoun(question)


def retrieval_text(case: Case, question: str, *, scenario_words: int = 180) -> str:
    """The text to retrieve with: the question, plus the scenario when the question alone is unspecific."""
    if needs_scenario(question):
        return f"{question} {truncate_words(case.clinical_scenario, scenario_words)}"
    return question


def decompose(case: Case) -> list[SubQuestion]:
    """The rule-based decomposition every strategy starts from (ids ``q{i}`` / ``q{i}.{j}``, 1-based)."""
    subs = []
    for i, question in enumerate(case.questions):
        # A multiple-choice question has one answer (an option): splitting it would choose twice.
        mcq = case.options is not None and case.options[i] is not None
        parts = [question.strip()] if mcq else split_compound(question)
        for j, part in enumerate(parts):
            sid = f"q{i + 1}" if len(parts) == 1 else f"q{i + 1}.{j + 1}"
            subs.append(SubQuestion(id=sid, question_index=i, text=part,
                                    queries=(Query(retrieval_text(case, part)),),
                                    facts=scenario_facts(case, part)))
    return subs


class DecompositionStrategy:
    name: ClassVar[str] = "decomposition"
    description: ClassVar[str] = ("One sub-question per input question; compound questions split; each carries "
                                  "its scenario facts. Rule-based (no LLM). The default.")
    llm_calls_per_question: ClassVar[float] = 0

    def translate(self, case: Case, llm: ChatLLM | None = None, budget: LLMBudget | None = None) -> Translation:
        return Translation(decompose(case), fusion="union")
