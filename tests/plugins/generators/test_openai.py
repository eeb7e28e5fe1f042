"""The ``openai`` generator against a real ``clinrag serve`` (SmolLM2) started in a subprocess on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from clinrag.cli import main
from clinrag.plugins.generators.openai_compat import (
    OpenAIChatLLM,
    ServerError,
    normalise_base_url,
)
from clinrag.serving.openai_server import RequestError, parse_chat_request

from ...conftest import free_port

REPO = Path(__file__).resolve().parents[3]
DEMO_CASES = REPO / "examples" / "demo" / "cases.jsonl"


def test_normalise_base_url():
    assert normalise_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalise_base_url("http://h:8000/v1/") == "http://h:8000/v1"


def test_parse_chat_request_validates_fields():
    ok = parse_chat_request({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                             "max_tokens": 5000}, served_model="m", default_max_tokens=16, max_tokens_cap=64)
    assert ok.messages == [{"role": "user", "content": "hi"}] and ok.max_new_tokens == 64
    bad = [({"model": "other", "messages": [{"role": "user", "content": "x"}]}, "not served"),
           ({"messages": []}, "non-empty"),
           ({"messages": [{"role": "robot", "content": "x"}]}, "role"),
           ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
           ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens")]
    for body, msg in bad:
        with pytest.raises(RequestError, match=msg):
            parse_chat_request(body, served_model="m", default_max_tokens=16, max_tokens_cap=64)


def test_unreachable_server_is_a_clear_error():
    llm = OpenAIChatLLM(f"http://127.0.0.1:{free_port()}", model="m", retries=0, timeout=5)
    with pytest.raises(ServerError, match="cannot reach the chat server"):
        llm.chat([[{"role": "user", "content": "hi"}]])

@pytest.mark.slow
def test_server_errors_are_openai_shaped(smollm2_server):
    llm = OpenAIChatLLM(smollm2_server, model="not-this-model", retries=0)
    with pytest.raises(ServerError, match="HTTP 404.*not served"):
        llm.chat([[{"role": "user", "content": "hi"}]])
    req = urllib.request.Request(f"{smollm2_server}/chat/completions", data=b"{not json", method="POST",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 400 and "not valid JSON" in json.loads(info.value.read())["error"]["message"]


@pytest.mark.slow
def test_openai_generator_equals_hf_generator_tokens(smollm2_server, smollm2_dir):
    """Same model, greedy: the served (micro-batched) answers equal the in-process hf ones, text for text."""
    from clinrag.plugins.generators.hf import HFChatLLM

    scenario = "Clinical scenario: A 70-year-old woman has fever, cough and confusion; respiratory rate 32/min."
    convs = [[{"role": "system", "content": "You are a careful clinical assistant."},
              {"role": "user", "content": f"{scenario}\n\nQuestion: {q}"}]
             for q in ("What is the likely diagnosis?", "Which severity score applies?")]
    remote = OpenAIChatLLM(smollm2_server, max_new_tokens=8).chat(convs)  # model name from /v1/models
    local = HFChatLLM(str(smollm2_dir), max_new_tokens=8).chat(convs)
    assert [g.text for g in remote] == [g.text for g in local]
    assert all(g.usage.completion_tokens > 0 and g.usage.prompt_tokens > 40 for g in remote)


@pytest.mark.slow
def test_clinrag_answer_with_openai_generator(smollm2_server, demo_index_dir, capsys):
    rc = main(["answer", str(DEMO_CASES), "--index", str(demo_index_dir), "--generator", "openai",
               "--base-url", smollm2_server, "-k", "2", "--max-new-tokens", "8", "--case-id", "demo-atrial-fibrillation",
               "--format", "json"])
    assert rc == 0
    response = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert response["generator"] == "openai"
    assert [a["index"] for a in response["answers"]] == [1, 2, 3]
    assert all(a["answer"].strip() for a in response["answers"]) and response["summary"].strip()
    n_sub = sum(len(a["sub_questions"]) for a in response["answers"])
    assert response["usage"]["llm_calls"] == n_sub + 1
    assert 0 < response["usage"]["completion_tokens"] <= 8 * (n_sub + 1)


@pytest.mark.slow
def test_shared_data_case_with_openai_generator(smollm2_server, shared_data, demo_index_dir, capsys):
    rc = main(["answer", str(shared_data / "cases" / "medquad_multi_dev.jsonl"), "--index", str(demo_index_dir),
               "--generator", "openai", "--base-url", smollm2_server, "-k", "2", "--max-new-tokens", "4", "--limit", "1",
               "--format", "json"])
    assert rc == 0
    response = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert response["generator"] == "openai" and len(response["answers"]) >= 3
    assert all(a["answer"].strip() for a in response["answers"])
