"""LangGraph Server for real: ``langgraph dev`` (in-memory, 127.0.0.1, no tracing, no analytics) in a subprocess,
driven by the official ``langgraph-sdk`` client, as any LangGraph user would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import free_port, stop_process, wait_for_server

pytest.importorskip("langgraph_cli", reason="langgraph-cli[inmem] is not installed (pip install -e '.[server]')")
langgraph_sdk = pytest.importorskip("langgraph_sdk", reason="langgraph-sdk is not installed (pip install -e '.[server]')")

REPO = Path(__file__).resolve().parents[2]
#: Keys that would switch on LangSmith tracing, metadata reporting or a licence check: never set in the test.
CLOUD_KEYS = ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "LANGSMITH_CONTROL_PLANE_API_KEY",
              "LANGGRAPH_CLOUD_LICENSE_KEY", "LANGSMITH_ENDPOINT")


@pytest.fixture(scope="module")
def server(medquad_index, tmp_path_factory):
    """The server's URL and its log file. It runs in a temporary folder, so its `.langgraph_api/` lands there."""
    port, workdir = free_port(), tmp_path_factory.mktemp("langgraph-dev")
    env = {k: v for k, v in os.environ.items() if k not in CLOUD_KEYS}
    env.update(LANGSMITH_TRACING="false", LANGGRAPH_CLI_NO_ANALYTICS="1", CLINRAG_INDEX=str(medquad_index),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    log = workdir / "server.log"
    cmd = [sys.executable, "-m", "langgraph_cli", "dev", "--config", str(REPO / "langgraph.json"), "--no-browser",
           "--no-reload", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(proc, f"{url}/ok", log, seconds=180, what="langgraph dev")
        yield url, log
    finally:
        stop_process(proc)


@pytest.mark.slow
def test_the_sdk_streams_each_step_and_reads_one_answer_per_question(server, medquad_case):
    url, log = server
    client = langgraph_sdk.get_sync_client(url=url)
    (assistant,) = client.assistants.search(graph_id="clinrag")
    schemas = client.assistants.get_schemas(assistant["assistant_id"])
    assert {"id", "clinical_scenario", "questions"} <= set(schemas["input_schema"]["required"])
    assert {"answers", "summary"} <= set(schemas["output_schema"]["properties"])
    assert {"index", "strategy", "generator", "model", "k", "mode"} <= set(schemas["context_schema"]["properties"])

    n = len(medquad_case["questions"])
    thread = client.threads.create()
    parts = list(client.runs.stream(thread["thread_id"], "clinrag", input=medquad_case, context={"k": 3},
                                    stream_mode="updates"))
    updates = [p.data for p in parts if p.event == "updates"]
    assert not [p for p in parts if p.event == "error"], parts
    nodes = [name for update in updates for name in update]
    assert nodes[0] == "case" and set(nodes[1:3]) == {"translate", "summarize"}
    assert nodes[3:3 + n] == ["retrieve"] * n and nodes[3 + n:] == ["answer", "compose"]
    # Every step's update carries its JSON record (LangGraph Server streams only output keys).
    records = [u[name]["steps"][0] for u in updates for name in u if name != "compose"]
    assert [r["step"] for r in records] == nodes[:-1]
    branches = [r for r in records if r["step"] == "retrieve"]
    assert sorted(r["sub_question"] for r in branches) == [f"q{i + 1}" for i in range(n)]  # none is compound
    assert all(len(r["passages"]) == 3 and r["passages"][0]["id"] for r in branches)
    response = updates[-1]["compose"]
    assert len(response["answers"]) == n and response["summary"] and response["strategy"] == "decomposition"
    assert all(a["sources"] for a in response["answers"])
    state = client.threads.get_state(thread["thread_id"])["values"]
    assert [a["index"] for a in state["answers"]] == list(range(1, n + 1)) and len(state["steps"]) == len(records)

    # A second, stateless run with other settings reuses the loaded index (no thread, nothing kept).
    start = time.monotonic()
    out = client.runs.wait(None, "clinrag", input=medquad_case, context={"k": 2, "strategy": "none"})
    assert [a["question"] for a in out["answers"]] == medquad_case["questions"] and out["strategy"] == "none"
    assert all(len(a["sub_questions"][0]["retrieved"]) == 2 for a in out["answers"])
    print(f"second run over HTTP: {time.monotonic() - start:.1f} s")

    text = log.read_text(errors="replace")
    assert medquad_case["clinical_scenario"] not in text and medquad_case["questions"][0] not in text  # no case text
    assert "smith.langchain.com/api" not in text and "tracing" not in text.lower()
