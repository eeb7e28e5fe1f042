"""``multi_query``: several paraphrases of each sub-question, retrieved together, results unioned.

Pick it when the wording of a question may not match the wording of the passages (lay versus clinical terms,
abbreviations): each paraphrase retrieves on its own and the union, deduplicated by passage id keeping the
best score, widens recall. One LLM call per sub-question (all ``n`` paraphrases in one reply, all
sub-questions in one batch). The original question is always one of the queries, so a bad paraphrase can
only add passages, never lose the ones the question itself retrieves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from clinrag.core import prompts
from clinrag.core.types import Query, SubQuestion

from .base import int_option
from .decomposition import retrieval_text
from .expansion import ExpandingStrategy, anchor_text
from .parsing import parse_list

if TYPE_CHECKING:
    from clinrag.core.cases import Case
    from clinrag.plugins.generators.base import Message


class MultiQueryStrategy(ExpandingStrategy):
    name: ClassVar[str] = "multi_query"
    description: ClassVar[str] = ("n LLM paraphrases per sub-question plus the original; results unioned and "
                                  "deduplicated by passage id. For wording mismatch (lay vs clinical terms).")
    llm_calls_per_question: ClassVar[float] = 1
    fusion: ClassVar[str] = "union"
    query_kind: ClassVar[str] = "paraphrase"

    def __init__(self, *, n: int = 3, max_new_tokens: int = 120) -> None:
        super().__init__(max_new_tokens=max_new_tokens)
        self.n = int_option(self.name, "n", n, minimum=1)

    def conversation(self, case: Case, sq: SubQuestion) -> list[Message]:
        return prompts.paraphrase_messages(sq.text, sq.facts, self.n)

    def expand(self, case: Case, sq: SubQuestion, reply: str) -> tuple[Query, ...] | None:
        rewrites = parse_list(reply, anchor=anchor_text(case, sq), exclude=[sq.text], limit=self.n,
                              questions=True)
        if not rewrites:
            return None
        return sq.queries + tuple(Query(retrieval_text(case, r), self.query_kind) for r in rewrites)
