"""JSON settings → AgentContext: validated before anything loads, and the loaded parts shared across settings."""

from __future__ import annotations

import pytest
from clinrag.agent.settings import AgentSettings, resolve_context
from clinrag.core.errors import ClinragError, PluginError


def test_settings_from_json():
    assert AgentSettings.from_json(None) == AgentSettings() == AgentSettings.from_json({})
    s = AgentSettings.from_json({"strategy": "hyde", "k": 3, "model": "m.gguf", "max_new_tokens": 32})
    assert (s.strategy, s.k) == ("hyde", 3)
    assert s.generator_options() == {"model": "m.gguf", "max_new_tokens": 32}
    assert AgentSettings.from_json(s.to_json()) == s
    with pytest.raises(ClinragError, match=r"unknown agent setting\(s\) trust_remote_code \(valid: index, "):
        AgentSettings.from_json({"trust_remote_code": True})
    with pytest.raises(ClinragError, match="must be a JSON object, got list"):
        AgentSettings.from_json([1])


@pytest.mark.parametrize("settings, message", [
    ({"strategy": "nope"}, "nope"),
    ({"generator": "nope"}, "nope"),
    ({"mode": "nope"}, "mode: unknown retrieval mode 'nope'"),
    ({"k": 0}, "k must be a whole number of at least 1"),
])
def test_bad_settings_fail_before_the_index_loads(tmp_path, settings, message):
    # The index folder does not exist: reaching it would raise an index error instead of the one expected.
    with pytest.raises(ClinragError, match=message) as err:
        resolve_context(AgentSettings(index=str(tmp_path / "missing"), **settings))
    assert "index" not in type(err.value).__name__.lower()
    if "strategy" in settings or "generator" in settings:
        assert isinstance(err.value, PluginError)


def test_an_index_is_required_per_question():
    with pytest.raises(ClinragError, match="an index is required"):
        resolve_context(AgentSettings())


@pytest.mark.slow
def test_components_are_built_once_and_shared(demo_index_dir):
    a = resolve_context(AgentSettings(index=str(demo_index_dir), strategy="none", k=2))
    assert resolve_context(AgentSettings(index=str(demo_index_dir), strategy="none", k=2)) is a
    b = resolve_context(AgentSettings(index=str(demo_index_dir), strategy="decomposition"))
    assert b is not a and b.strategy.name == "decomposition" and (a.k, b.k) == (2, 5)
    assert b.retriever is a.retriever and b.generator is a.generator  # one index, one embedder in memory
