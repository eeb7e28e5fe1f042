"""``hyde``: search with the embedding of a hypothetical answer passage, averaged with the question's.

Hypothetical Document Embeddings (Gao et al. 2022): the LLM writes a short passage that *would* answer the
sub-question; passages resemble passages more than they resemble questions, so its embedding lands nearer the
relevant ones. The passage may be wrong — it is never shown to the answerer, only embedded — and averaging it
with the question's embedding keeps the search anchored to what was asked. Pick it for short or terse questions
and corpora written as prose; avoid it with a model too small to write on-topic text. One LLM call per
sub-question.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from clinrag.core import prompts
from clinrag.core.types import Query, SubQuestion

from .base import int_option
from .expansion import ExpandingStrategy, anchor_text
from .parsing import parse_passage

if TYPE_CHECKING:
    from clinrag.core.cases import Case
    from clinrag.plugins.generators.base import Message


class HydeStrategy(ExpandingStrategy):
    name: ClassVar[str] = "hyde"
    description: ClassVar[str] = ("Embeds an LLM-written hypothetical answer passage averaged with the question "
                                  "to search. For terse questions over prose corpora.")
    llm_calls_per_question: ClassVar[float] = 1
    fusion: ClassVar[str] = "union"

    def __init__(self, *, max_words: int = 80, max_new_tokens: int = 128) -> None:
        super().__init__(max_new_tokens=max_new_tokens)
        self.max_words = int_option(self.name, "max_words", max_words, minimum=8)

    def conversation(self, case: Case, sq: SubQuestion) -> list[Message]:
        return prompts.hyde_messages(sq.text, sq.facts, self.max_words)

    def expand(self, case: Case, sq: SubQuestion, reply: str) -> tuple[Query, ...] | None:
        passage = parse_passage(reply, anchor=anchor_text(case, sq), max_words=self.max_words)
        if passage is None:
            return None
        question = sq.queries[0].text
        return (Query(question, "hyde", embed_texts=(question, passage)),)
