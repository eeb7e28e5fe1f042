"""Every strategy with the ``openai`` generator, against a real ``clinrag serve`` (SmolLM2) on 127.0.0.1.

With ``openai`` answering, the strategies' LLM is the served model too (through the generator's ``llm``), so
each LLM strategy's calls go over HTTP as well.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from clinrag.agent.run import build_agent


@pytest.fixture(scope="module")
def served(smollm2_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "clinrag", "serve", "--model", str(smollm2_dir), "--port", str(port),
                             "--max-new-tokens", "16"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"clinrag serve exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as resp:
                    json.loads(resp.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("clinrag serve did not start within 240 s")
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_every_strategy_with_openai_generator_answers_a_shared_case(served, medquad):
    cases, retriever = medquad
    case = cases["medquad-6-0000054"]
    for strategy in ("decomposition", "multi_query", "rag_fusion", "step_back", "hyde", "none"):
        llm_strategy = strategy not in ("decomposition", "none")
        agent = build_agent(retriever, strategy=strategy, generator="openai", k=2,
                            generator_options={"base_url": served, "max_new_tokens": 6},
                            strategy_options={"max_new_tokens": 16} if llm_strategy else {})
        resp = agent.answer(case)
        assert resp.generator == "openai" and resp.strategy == strategy
        assert [a.index for a in resp.answers] == list(range(1, case.n_questions + 1))
        assert all(a.answer.strip() and a.sources for a in resp.answers), strategy
        n_sub = sum(len(a.sub_questions) for a in resp.answers)
        assert resp.usage.llm_calls == n_sub + 1 + (n_sub if llm_strategy else 0), strategy
