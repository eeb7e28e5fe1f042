"""The served graph in-process: JSON case in, JSON response out, settings as JSON context, node-by-node updates."""

from __future__ import annotations

import json
import re

import pytest
from clinrag.agent.response import CaseResponse
from clinrag.agent.settings import AgentSettings
from clinrag.core.cases import Case
from clinrag.core.errors import CaseError
from clinrag.serving.langgraph_app import INDEX_ENV, make_graph, settings_of


def test_schemas_are_the_case_the_response_and_the_settings():
    graph = make_graph()
    assert make_graph() is graph  # compiled once
    inp, out, ctx = graph.get_input_jsonschema(), graph.get_output_jsonschema(), graph.get_context_jsonschema()
    assert set(inp["properties"]) == set(Case.model_fields)
    assert {"id", "clinical_scenario", "questions"} <= set(inp["required"])
    assert set(out["properties"]) == {*CaseResponse.model_fields, "steps"}
    assert {"index", "strategy", "generator", "model", "k", "mode", "answer_mode"} <= set(ctx["properties"])
    assert not ctx.get("required")  # {} is a valid context: every setting has a default
    json.dumps([inp, out, ctx])


def test_default_index_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(INDEX_ENV, str(tmp_path))
    assert settings_of(None).index == str(tmp_path)
    assert settings_of({"index": "elsewhere"}).index == "elsewhere"
    assert settings_of({"answer_mode": "single_pass"}).index is None  # no retrieval, so no index is loaded
    monkeypatch.delenv(INDEX_ENV)
    assert settings_of(AgentSettings()).index == ".cache/demo-index"


@pytest.mark.slow
def test_a_json_case_streams_each_step_and_ends_in_a_json_response(medquad_case, medquad_index, monkeypatch):
    monkeypatch.setenv(INDEX_ENV, str(medquad_index))  # no index in the settings: the served default
    n = len(medquad_case["questions"])
    updates = list(make_graph().stream(medquad_case, context={"k": 3, "strategy": "none"}, stream_mode="updates"))
    nodes = [name for update in updates for name in update]
    assert nodes[0] == "case" and set(nodes[1:3]) == {"translate", "summarize"}
    assert nodes[3:3 + n] == ["retrieve"] * n and nodes[3 + n:] == ["answer", "compose"]

    records = [update[name]["steps"] for update in updates for name in update if name != "compose"]
    assert [r[0]["step"] for r in records] == nodes[:-1]
    json.dumps(records)
    response = updates[-1]["compose"]
    json.dumps(response)  # plain JSON, no Python objects
    parsed = CaseResponse.model_validate(response)
    assert parsed.case_id == medquad_case["id"] and parsed.strategy == "none" and parsed.generator == "extractive"
    assert [a.question for a in parsed.answers] == medquad_case["questions"] and parsed.summary
    # The evidence is in the index: every question retrieves passages on the case's disease (its gold passages
    # are per question type, so a sibling's may outrank a question's own), and half find their own.
    case_gold = {pid for gold in medquad_case["evidence"] for pid in gold}
    retrieved = [{r.id for s in a.sub_questions for r in s.retrieved} for a in parsed.answers]
    assert all(ids & case_gold for ids in retrieved), retrieved
    assert sum(bool(ids & set(gold)) for ids, gold in zip(retrieved, medquad_case["evidence"])) >= n // 2


def test_a_bad_case_is_one_line_naming_the_field():
    with pytest.raises(CaseError, match=r"^run input, field 'questions': required field is missing"):
        make_graph().invoke({"id": "x", "clinical_scenario": "A patient."}, context={"answer_mode": "single_pass"})


def test_langgraph_json_and_make_serve_the_demo_index():
    import importlib
    from pathlib import Path

    from clinrag.core import defaults

    repo = Path(__file__).resolve().parents[2]
    config = json.loads((repo / "langgraph.json").read_text(encoding="utf-8"))
    module, _, name = config["graphs"]["clinrag"].partition(":")
    assert getattr(importlib.import_module(module), name) is make_graph
    makefile = (repo / "Makefile").read_text(encoding="utf-8")
    # make demo/test install what `langgraph dev` needs (other extras may sit beside them)
    installed = re.search(r"pip install -q -e '\.\[([^\]]*)\]'", makefile)
    assert installed and {"dev", "server", "ui"} <= set(installed.group(1).split(","))
    assert f"DEMO_INDEX := $(CACHE)/{Path(defaults.DEMO_INDEX).name}" in makefile and "CACHE := .cache" in makefile
