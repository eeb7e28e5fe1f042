"""The generator contract: :class:`Generator` (answers and summaries) and :class:`ChatLLM` (raw chat calls).

A generator answers every sub-question of a case in one call to :meth:`Generator.answer`, so an LLM
generator can batch them; it writes the case summary once with :meth:`Generator.summarize`. Generators
backed by an LLM also expose it as :attr:`Generator.llm`, the handle query-translation strategies use;
the extractive generator has none (``llm is None``).

Capabilities beyond the contract are optional Protocols a plugin implements or not; callers ask the plugin
(``isinstance(gen, SharesEmbedder)``), never its name:

* :class:`SharesEmbedder`: the generator embeds text and can reuse the retriever's already-loaded embedder.
* :class:`LoadsChatLLM` (on the class): it builds a :class:`ChatLLM` from a model spec (hub id, folder,
  ``.gguf``), which is how a separate query-translation LLM (``--translator-model``) is loaded.
* :class:`ResolvesRunSettings` (on the class): what its options resolve to on this machine (``hf``: the dtype
  it answers in), which an evaluation records so it never resumes results computed under another setting.
* :class:`SummarizesWithAnswers`: it writes the summary in the same call as the answers (``hf``: one batched
  decode in which the summary shares the answers' system + scenario prefix), so the graph skips the separate
  summary call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from clinrag.core.errors import PluginContractError
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


@runtime_checkable
class SharesEmbedder(Protocol):
    """Capability: the generator embeds text and can use the retriever's embedder instead of loading its own."""

    def share_embedder(self, embedder: Any) -> None:
        """Use ``embedder`` (already loaded by the retriever) unless this generator was given one explicitly."""
        ...


@runtime_checkable
class LoadsChatLLM(Protocol):
    """Capability of a generator *class*: build a chat LLM from a model spec without building a generator."""

    @classmethod
    def load_chat_llm(cls, model: str) -> ChatLLM:
        """The chat LLM for ``model`` (hub id, local folder or ``.gguf`` file), loaded lazily."""
        ...


@runtime_checkable
class ResolvesRunSettings(Protocol):
    """Capability of a generator *class*: what its options resolve to on this machine (e.g. the dtype it answers
    in when none is given), for a run to record, so results computed under one setting are never resumed under
    another after a default changes."""

    #: The options whose effect :meth:`resolved_settings` records: a run records the resolved value in their place,
    #: so asking explicitly for what the default gives is the same run.
    resolved_options: ClassVar[tuple[str, ...]]

    @classmethod
    def resolved_settings(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Settings to record beside ``options`` (JSON values); empty when there is nothing implicit."""
        ...


@runtime_checkable
class SummarizesWithAnswers(Protocol):
    """Capability: answers and summary in one call, cheaper than :meth:`Generator.answer` + :meth:`summarize`."""

    def answer_with_summary(self, case: Case, requests: Sequence[AnswerRequest]) -> tuple[list[Generation],
                                                                                          Generation]:
        """One :class:`Generation` per request, and the case summary (what :meth:`Generator.summarize` returns)."""
        ...


def check_generations(generator: str, generations: Any, expected: int, what: str) -> list[Generation]:
    """``generations`` if it is a list of ``expected`` :class:`Generation` s, else a :class:`PluginContractError`
    naming the generator and what it returned (``what``: the call, e.g. ``"answer"``)."""
    if not isinstance(generations, (list, tuple)):
        raise PluginContractError("generator", generator, f"{what}() returned {type(generations).__name__}, "
                                  f"not a list of Generation")
    if len(generations) != expected:
        raise PluginContractError("generator", generator, f"{what}() returned {len(generations)} generation(s) "
                                  f"for {expected} request(s)")
    wrong = sorted({type(g).__name__ for g in generations if not isinstance(g, Generation)})
    if wrong:
        raise PluginContractError("generator", generator, f"{what}() returned {', '.join(wrong)} items, "
                                  f"not Generation")
    return list(generations)


generators: Registry[Generator] = Registry("clinrag.generators", "generator")


def get_generator(name: str, **options: Any) -> Generator:
    """Create the generator registered under ``name`` (error lists the valid names)."""
    return generators.create(name, **options)


def list_generators() -> list[dict[str, str]]:
    return [{"name": n, "description": getattr(generators.get_class(n), "description", "")}
            for n in generators.names()]
