"""``clinrag answer`` with plugins that break their contract: one line naming the plugin and what it broke, exit 2.

The broken strategies are registered in-process, as a third-party package's would be through its entry point. The
contract is checked right after translation, before anything is retrieved, so the index folder is never opened.
"""

from __future__ import annotations

from typing import ClassVar

import pytest
from clinrag.core.types import Generation, Query, SubQuestion
from clinrag.plugins.generators import generators
from clinrag.plugins.strategies import strategies
from clinrag.plugins.strategies.base import Translation

from ..conftest import DEMO_CASES


class _Scripted:
    llm_calls_per_question: ClassVar[float] = 0
    description: ClassVar[str] = "Test plugin that breaks the strategy contract."

    def __init__(self) -> None:
        pass


class DropsAQuestion(_Scripted):
    name: ClassVar[str] = "test-drops-a-question"

    def translate(self, case, llm=None, budget=None):
        return Translation([SubQuestion("q1", 0, case.questions[0], (Query(case.questions[0]),))])


class UnknownFusion(_Scripted):
    name: ClassVar[str] = "test-unknown-fusion"

    def translate(self, case, llm=None, budget=None):
        subs = [SubQuestion(f"q{i + 1}", i, q, (Query(q),)) for i, q in enumerate(case.questions)]
        return Translation(subs, fusion="max")


class ReturnsAList(_Scripted):
    name: ClassVar[str] = "test-returns-a-list"

    def translate(self, case, llm=None, budget=None):
        return [SubQuestion(f"q{i + 1}", i, q, (Query(q),)) for i, q in enumerate(case.questions)]


class EchoGenerator:
    """No LLM, no embedder: the index is never touched before the strategy's output is checked."""

    name: ClassVar[str] = "test-echo"
    description: ClassVar[str] = "Test generator."
    llm = None

    def summarize(self, case):
        return Generation(case.clinical_scenario[:40])

    def answer(self, case, requests):
        return [Generation(r.question) for r in requests]


for plugin in (DropsAQuestion, UnknownFusion, ReturnsAList):
    if plugin.name not in strategies.names():
        strategies.register(plugin.name, plugin)
if EchoGenerator.name not in generators.names():
    generators.register(EchoGenerator.name, EchoGenerator)


@pytest.mark.parametrize("strategy, broke", [
    ("test-drops-a-question", "produced no sub-question for question(s) [2, 3, 4] (case 'demo-inferior-stemi')"),
    ("test-unknown-fusion", "unknown fusion 'max' (valid: union, rrf)"),
    ("test-returns-a-list", "translate() returned list, not a Translation (case 'demo-inferior-stemi')"),
])
def test_a_strategy_breaking_its_contract_is_one_line(strategy, broke, tmp_path, capsys):
    from clinrag.cli import main

    code = main(["answer", str(DEMO_CASES), "--index", str(tmp_path / "never-opened"), "--case-id",
                 "demo-inferior-stemi", "--strategy", strategy, "--generator", "test-echo"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err == f"error: strategy {strategy!r} broke its contract: {broke}\n"
