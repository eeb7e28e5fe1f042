"""``decomposition`` (default): one sub-question per input question, compound questions split further.

Rule-based, no LLM call. "What is the most likely diagnosis and how should it be confirmed?" becomes two
sub-questions serving the same input question. Each sub-question carries the scenario facts that share
words with it; a question that names no topic of its own ("What is the next step?") or leans on a pronoun
is retrieved together with the scenario, because on its own it would retrieve nothing specific. A question
that names one topic ("What is (are) vitiligo ?") is retrieved as written: appending a generic scenario to
it cost 0.005 hit@5 on MedQuAD dev. Each sub-question's query carries the case's other sub-questions as
``contrast``, so the retriever can demote a passage a sibling question matches better (sibling contrast).

With ``refine=true`` an LLM rewrites each input question into self-contained sub-questions (splitting what
the rules missed, naming the disease instead of "it"), one call per non-multiple-choice question, all in one
batch. The LLM's parts are split by the rules again, and a part must keep a word of its question and bring
no topical word foreign to the case. A reply with no acceptable part keeps the rule-based split for that
question, and the translation notes it.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from clinrag.core import prompts
from clinrag.core.text import (
    content_words,
    has_pronoun,
    sentences,
    topical_words,
    truncate_words,
    words,
)
from clinrag.core.types import Query, SubQuestion

from .base import LLMBudget, StrategyOptionError, Translation, int_option
from .llm import ask, budget_note, no_llm_note, parse_note
from .parsing import parse_list

if TYPE_CHECKING:
    from clinrag.core.cases import Case
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
    return not topical_words(question) or has_pronoun(question)


def retrieval_text(case: Case, question: str, *, scenario_words: int = 180) -> str:
    """The text to retrieve with: the question, plus the scenario when the question alone is unspecific."""
    if needs_scenario(question):
        return f"{question} {truncate_words(case.clinical_scenario, scenario_words)}"
    return question


def is_mcq(case: Case, i: int) -> bool:
    # A multiple-choice question has one answer (an option): splitting it would choose twice.
    return case.options is not None and case.options[i] is not None


def sub_questions(case: Case, i: int, parts: list[str]) -> list[SubQuestion]:
    """Sub-questions for input question ``i`` from its parts (ids ``q{i}`` / ``q{i}.{j}``, 1-based)."""
    out = []
    for j, part in enumerate(parts):
        sid = f"q{i + 1}" if len(parts) == 1 else f"q{i + 1}.{j + 1}"
        out.append(SubQuestion(id=sid, question_index=i, text=part, queries=(Query(retrieval_text(case, part)),),
                               facts=scenario_facts(case, part)))
    return out


def with_contrast(subs: list[SubQuestion]) -> list[SubQuestion]:
    """Each sub-question's queries carrying the other sub-questions' texts as ``contrast``."""
    out = []
    for sq in subs:
        others = tuple(dict.fromkeys(o.text for o in subs if o.id != sq.id and o.text != sq.text))
        queries = tuple(replace(q, contrast=others) for q in sq.queries)
        out.append(replace(sq, queries=queries))
    return out


def decompose(case: Case) -> list[SubQuestion]:
    """The rule-based decomposition every strategy starts from (ids ``q{i}`` / ``q{i}.{j}``, 1-based), each
    sub-question's query contrasted with its siblings."""
    subs = []
    for i, question in enumerate(case.questions):
        parts = [question.strip()] if is_mcq(case, i) else split_compound(question)
        subs.extend(sub_questions(case, i, parts))
    return with_contrast(subs)


class DecompositionStrategy:
    name: ClassVar[str] = "decomposition"
    description: ClassVar[str] = ("One sub-question per input question; compound questions split; each carries "
                                  "its scenario facts. Rule-based (no LLM). The default. refine=true: an LLM "
                                  "rewrites the split (1 call per question).")
    llm_calls_per_question: ClassVar[float] = 0

    def __init__(self, *, refine: bool = False, max_parts: int = 4, max_new_tokens: int = 120,
                 scenario_words: int = 120) -> None:
        if not isinstance(refine, bool):
            raise StrategyOptionError(f"strategy 'decomposition': option refine must be true or false, got {refine!r}")
        self.refine = refine
        self.max_parts = int_option(self.name, "max_parts", max_parts, minimum=1)
        self.max_new_tokens = int_option(self.name, "max_new_tokens", max_new_tokens, minimum=1)
        self.scenario_words = int_option(self.name, "scenario_words", scenario_words, minimum=0)

    def translate(self, case: Case, llm: ChatLLM | None = None, budget: LLMBudget | None = None) -> Translation:
        if not self.refine:
            return Translation(decompose(case), fusion="union")
        return self._refined(case, llm, budget)

    def _refined(self, case: Case, llm: ChatLLM | None, budget: LLMBudget | None) -> Translation:

        start = time.perf_counter()
        rules = decompose(case)
        if llm is None:
            return Translation(rules, notes=[no_llm_note(self.name)], fallbacks=[sq.id for sq in rules])
        asked = [i for i in range(case.n_questions) if not is_mcq(case, i)]
        scenario = truncate_words(case.clinical_scenario, self.scenario_words)
        batch = ask(llm, [prompts.decompose_messages(case.questions[i], scenario) for i in asked], budget=budget,
                    max_new_tokens=self.max_new_tokens)
        replies = dict(zip(asked, batch.outputs))
        subs: list[SubQuestion] = []
        skipped: list[str] = []
        failed: list[str] = []
        for i, question in enumerate(case.questions):
            mine = [sq for sq in rules if sq.question_index == i]
            reply = replies.get(i)
            parts = None
            if reply is not None:
                # Each part must keep a word of the question itself: a rewrite that drifted is no refinement.
                parts = [piece for p in parse_list(reply, anchor=f"{question} {case.clinical_scenario}",
                                                   limit=self.max_parts, questions=True)
                         if acceptable_part(p, question, case) for piece in split_compound(p)][: self.max_parts]
            if parts:
                subs.extend(sub_questions(case, i, parts))
                continue
            subs.extend(mine)
            if i in replies:
                (skipped if reply is None else failed).extend(sq.id for sq in mine)
        notes = []
        if skipped:
            notes.append(budget_note(self.name, budget, skipped, fallback="the rule-based split"))
        if failed:
            notes.append(parse_note(self.name, failed, fallback="the rule-based split"))
        usage = batch.usage
        usage.seconds = time.perf_counter() - start
        return Translation(with_contrast(subs), fusion="union", notes=notes, usage=usage, fallbacks=skipped + failed)


def acceptable_part(part: str, question: str, case: Case) -> bool:
    """A refined sub-question must keep a word of its question and bring no topical word that is neither in
    the question nor in the case: splitting and naming what "it" is need no new vocabulary, so a new term is
    a drift or a typo (SmolLM2-135M wrote "qSFA" for "qSOFA")."""
    known = set(words(f"{question} {case.context} {case.clinical_scenario}"))
    return bool(set(content_words(part)) & set(content_words(question))) and set(topical_words(part)) <= known
