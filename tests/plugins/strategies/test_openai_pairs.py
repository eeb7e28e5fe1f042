"""Every strategy with the ``openai`` generator, against a real ``clinrag serve`` (SmolLM2) on 127.0.0.1.

With ``openai`` answering, the strategies' LLM is the served model too (through the generator's ``llm``), so
each LLM strategy's calls go over HTTP as well.
"""

from __future__ import annotations

import pytest
from clinrag.agent.run import build_agent


@pytest.mark.slow
def test_every_strategy_with_openai_generator_answers_a_shared_case(smollm2_server, medquad):
    cases, retriever = medquad
    case = cases["medquad-6-0000054"]
    for strategy in ("decomposition", "multi_query", "rag_fusion", "step_back", "hyde", "none"):
        llm_strategy = strategy not in ("decomposition", "none")
        agent = build_agent(retriever, strategy=strategy, generator="openai", k=2,
                            generator_options={"base_url": smollm2_server, "max_new_tokens": 6},
                            strategy_options={"max_new_tokens": 16} if llm_strategy else {})
        resp = agent.answer(case)
        assert resp.generator == "openai" and resp.strategy == strategy
        assert [a.index for a in resp.answers] == list(range(1, case.n_questions + 1))
        assert all(a.answer.strip() and a.sources for a in resp.answers), strategy
        n_sub = sum(len(a.sub_questions) for a in resp.answers)
        assert resp.usage.llm_calls == n_sub + 1 + (n_sub if llm_strategy else 0), strategy
