"""The generator contract: :class:`Generator` (answers and summaries) and :class:`ChatLLM` (raw chat calls).

A generator answers every sub-question of a case in one call to :meth:`Generator.answer`, so an LLM
generator can batch them; it writes the case summary once with :meth:`Generator.summarize`. Generators
backed by an LLM also expose it as :attr:`Generator.llm`, the handle query-translation strategies use;
the extractive generator has none (``llm is None``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from clinrag.core.types import Generation, Hit, Message, SubQuestion
from clinrag.plugins.registry import Registry

if TYPE_CHECKING:
    from clinrag.core.cases import Case



@dataclass(frozen=True)
class AnswerRequest:
    """One sub-question to answer, with the passages retrieved for it and the question's options (if MCQ)."""

    sub_question: SubQuestion
    question: str
    hits: tuple[Hit, ...]
    options: dict[str, str] | None = None


@runtime_checkable
class ChatLLM(Protocol):
    """A chat model: a batch of conversations in, one completion each out (greedy unless configured)."""

    def chat(self, conversations: Sequence[Sequence[Message]], *, max_new_tokens: int | None = None) -> list[Generation]:
        ...


@runtime_checkable
class Generator(Protocol):
    name: ClassVar[str]
    description: ClassVar[str]

    @property
    def llm(self) -> ChatLLM | None: ...

    def summarize(self, case: Case) -> Generation: ...

    def answer(self, case: Case, requests: Sequence[AnswerRequest]) -> list[Generation]: ...


generators: Registry[Generator] = Registry("clinrag.generators", "generator")


def get_generator(name: str, **options: Any) -> Generator:
    """Create the generator registered under ``name`` (error lists the valid names)."""
    return generators.create(name, **options)


def list_generators() -> list[dict[str, str]]:
    return [{"name": n, "description": getattr(generators.get_class(n), "description", "")}
            for n in generators.names()]
