"""Building agents from plugin names: capabilities are asked of the plugin (never inferred from its name)."""

from __future__ import annotations

from typing import ClassVar

import pytest
from clinrag.agent.run import (
    build_agent,
    build_generator,
    load_translator_llm,
    translator_loader,
)
from clinrag.core import defaults
from clinrag.core.errors import PluginError
from clinrag.core.types import Generation
from clinrag.plugins.generators import generators
from clinrag.plugins.generators.hf import HFChatLLM, HFGenerator


class RecordingRetriever:
    """A retriever with an embedder; records whether anything asked for it (loading one costs seconds)."""

    def __init__(self):
        self.embedder_asked = 0
        self._embedder = object()

    @property
    def embedder(self):
        self.embedder_asked += 1
        return self._embedder

    def retrieve(self, queries, k):
        return [[] for _ in queries]


class ScriptedLLM:
    def __init__(self, model):
        self.model = model

    def chat(self, conversations, *, max_new_tokens=None):
        return [Generation(self.model) for _ in conversations]


class EmbedsAndLoads:
    """A third-party generator with both optional capabilities, under a name the agent cannot know."""

    name: ClassVar[str] = "test-embeds-and-loads"
    description: ClassVar[str] = "Test generator with capabilities."
    llm = None

    def __init__(self):
        self.shared = None

    def share_embedder(self, embedder):
        self.shared = embedder

    @classmethod
    def load_chat_llm(cls, model):
        return ScriptedLLM(model)

    def summarize(self, case):
        return Generation("")

    def answer(self, case, requests):
        return [Generation("") for _ in requests]


class Plain(EmbedsAndLoads):
    """The same generator without the capabilities' methods."""

    name: ClassVar[str] = "test-plain"
    share_embedder = None  # type: ignore[assignment]
    load_chat_llm = None  # type: ignore[assignment]


for plugin in (EmbedsAndLoads, Plain):
    if plugin.name not in generators.names():
        generators.register(plugin.name, plugin)


def test_a_generator_that_shares_an_embedder_gets_the_retrievers():
    retriever = RecordingRetriever()
    agent = build_agent(retriever, generator="test-embeds-and-loads")
    assert agent.context.generator.shared is retriever._embedder
    ext = build_generator("extractive", retriever=retriever)
    assert ext.embedder is retriever._embedder  # the built-in one asks the same way


def test_a_generator_without_the_capability_never_touches_the_retrievers_embedder():
    retriever = RecordingRetriever()
    for name in ("test-plain", "hf"):
        build_agent(retriever, generator=name)
    assert retriever.embedder_asked == 0


def test_an_embedder_chosen_explicitly_is_kept():
    retriever = RecordingRetriever()
    assert build_generator("extractive", {"embedder": None}, retriever=retriever).embedder is None  # lexical scoring
    mine = object()
    assert build_generator("extractive", {"embedder": mine}, retriever=retriever).embedder is mine


def test_the_translator_llm_is_loaded_by_a_plugin_that_can():
    assert translator_loader("test-embeds-and-loads") is EmbedsAndLoads
    agent = build_agent(RecordingRetriever(), generator="test-embeds-and-loads", translator_model="tiny")
    assert isinstance(agent.context.translator_llm, ScriptedLLM) and agent.context.translator_llm.model == "tiny"
    # a generator that cannot (no method, or no LLM at all) hands it to the default translator plugin
    assert translator_loader("test-plain") is translator_loader("extractive") is HFGenerator
    llm = load_translator_llm("some/model", "extractive")
    assert isinstance(llm, HFChatLLM) and llm.model_spec == "some/model"  # lazy: nothing loaded yet


def test_no_plugin_able_to_load_a_translator_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(defaults, "TRANSLATOR_GENERATOR", "test-plain")
    with pytest.raises(PluginError, match="neither 'extractive' nor 'test-plain' does"):
        build_agent(RecordingRetriever(), generator="extractive", translator_model="m")
