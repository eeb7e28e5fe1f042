"""JSON-able agent settings, and the components they name, built once and reused across runs.

:class:`AgentContext` holds live objects (a loaded index, a model), so it cannot come from JSON. LangGraph Server,
Studio and the web page send plain JSON (``{"strategy": "hyde", "k": 3}``); :class:`AgentSettings` is that JSON,
and :func:`resolve_context` turns it into an :class:`AgentContext`, caching the expensive parts: the retriever by
(index, mode), the generator by its options, the whole context by the settings. Two settings that differ only in
strategy share one loaded index and one loaded model.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

from clinrag.core import defaults

from .context import AgentContext


@dataclass(frozen=True)
class AgentSettings:
    """What a run is answered with, as plain JSON. Every field has a default, so ``{}`` is valid.

    ``index``: the index folder (``None``: the caller's default; :func:`resolve_context` needs one except in
    ``single_pass``); ``strategy``/``generator``: plugin names; ``model``, ``adapter``, ``base_url``,
    ``max_new_tokens``: the LLM generators' options; ``k``: passages per sub-question; ``mode``: dense, bm25 or
    hybrid; ``answer_mode``: per_question or single_pass; ``llm_budget``: LLM calls query translation may spend;
    ``translator_model``: a separate query-translation LLM; ``strategy_options``: the strategy's keyword options.

    Free-form generator options are deliberately absent: a client of a server must not be able to switch on
    ``trust_remote_code`` or similar; the command line (``clinrag answer --option``) keeps that power."""

    index: str | None = None
    strategy: str = defaults.STRATEGY
    generator: str = defaults.GENERATOR
    model: str | None = None
    adapter: str | None = None
    base_url: str | None = None
    max_new_tokens: int | None = None
    k: int = defaults.TOP_K
    mode: str = defaults.RETRIEVAL_MODE
    answer_mode: str = defaults.ANSWER_MODE
    llm_budget: int | None = None
    translator_model: str | None = None
    strategy_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> AgentSettings:
        """Settings from a JSON object; an unknown key or a non-object is a one-line error naming the valid keys."""
        from dataclasses import fields

        from clinrag.core.errors import ClinragError

        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ClinragError(f"agent settings must be a JSON object, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ClinragError(f"unknown agent setting(s) {', '.join(unknown)} (valid: {', '.join(names)})")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> str:
        """A stable text key (settings hold a dict, so the dataclass itself is not hashable)."""
        return json.dumps(self.to_json(), sort_keys=True, default=str)

    def generator_options(self) -> dict[str, Any]:
        return {name: value for name, value in (("model", self.model), ("adapter", self.adapter),
                                                ("base_url", self.base_url), ("max_new_tokens", self.max_new_tokens))
                if value is not None}


class _Cache:
    """A small LRU of built components. One lock serialises building: a model must not load twice because two
    runs (or a run's two parallel first nodes) asked for it at once."""

    def __init__(self, size: int) -> None:
        self.size, self.items = size, OrderedDict()

    def get(self, key: Any, build: Any) -> Any:
        with _LOCK:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
            value = build()
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
            return value


_LOCK = threading.RLock()
# Small sizes on purpose: each generator may hold a model in memory.
_RETRIEVERS, _GENERATORS, _TRANSLATORS, _CONTEXTS = _Cache(4), _Cache(2), _Cache(2), _Cache(16)


def _retriever(index: str, mode: str) -> Any:
    def build() -> Any:
        from clinrag.retrieval.retriever import IndexRetriever

        retriever = IndexRetriever(index, mode=mode)
        # Load the index and the embedding model now, once, under the lock: not in whichever step embeds first.
        getattr(retriever.embedder, "model", None)
        return retriever

    return _RETRIEVERS.get((index, mode), build)


def resolve_context(settings: AgentSettings) -> AgentContext:
    """The :class:`AgentContext` for ``settings``, built on first use and cached (see the module docstring).

    Names and values are checked before anything heavy loads; errors are one-line
    :class:`~clinrag.core.errors.ClinragError`s."""

    def build() -> AgentContext:
        from clinrag.core.errors import ClinragError
        from clinrag.plugins.generators import generators
        from clinrag.plugins.strategies import get_strategy
        from clinrag.retrieval.options import RetrievalMode

        from .context import AnswerMode
        from .run import build_agent, build_generator, load_translator_llm

        # Cheap checks first: a misspelt name must not cost an index or model load.
        get_strategy(settings.strategy, **settings.strategy_options)
        generators.get_class(settings.generator)
        mode = RetrievalMode.parse(settings.mode, option="mode").value
        answer_mode = AnswerMode.parse(settings.answer_mode, option="answer_mode")
        if not isinstance(settings.k, int) or settings.k < 1:
            raise ClinragError(f"k must be a whole number of at least 1, got {settings.k!r}")
        if settings.index is None and answer_mode is AnswerMode.per_question:
            raise ClinragError("an index is required, except in answer mode single_pass")
        index = settings.index
        retriever = None if index is None else _retriever(index, mode)
        options = settings.generator_options()
        generator = _GENERATORS.get((settings.generator, json.dumps(options, sort_keys=True), index, mode),
                                    lambda: build_generator(settings.generator, options, retriever=retriever))
        translator = None if settings.translator_model is None else _TRANSLATORS.get(
            (settings.translator_model, settings.generator),
            lambda: load_translator_llm(settings.translator_model, settings.generator))
        return build_agent(retriever, strategy=settings.strategy, generator=generator, k=settings.k,
                           strategy_options=settings.strategy_options, translator_llm=translator,
                           llm_budget=settings.llm_budget, retrieval_mode=mode, answer_mode=answer_mode).context

    return _CONTEXTS.get(settings.key(), build)
