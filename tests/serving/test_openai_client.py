"""``clinrag serve`` (real SmolLM2 in a subprocess) through the official ``openai`` client: plain and streamed
completions, stop sequences, truthful finish reasons, seeded sampling, and the request fields it refuses."""

from __future__ import annotations

import pytest

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "system", "content": "You are a careful clinical assistant."},
            {"role": "user", "content": "List the first steps in managing a patient with suspected sepsis."}]


@pytest.fixture(scope="module")
def client(smollm2_server):
    return openai.OpenAI(base_url=smollm2_server, api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def model(client):
    return client.models.list().data[0].id


@pytest.fixture(scope="module")
def greedy(client, model):
    """The greedy reply to MESSAGES, 12 tokens: the reference the other tests compare with."""
    return client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=12, temperature=0)


def test_plain_completion(greedy, model):
    choice = greedy.choices[0]
    assert greedy.object == "chat.completion" and greedy.model == model
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert greedy.usage.completion_tokens == 12 and choice.finish_reason == "length"  # cut by max_tokens
    assert greedy.usage.total_tokens == greedy.usage.prompt_tokens + 12


def test_stream_equals_plain_and_ends_with_done(client, model, greedy):
    chunks = list(client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=12, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == greedy.choices[0].message.content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 3  # really incremental
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["length"]
    assert not chunks[-1].choices and chunks[-1].usage.completion_tokens == 12  # include_usage: the last chunk


def test_stop_sequence_cuts_the_reply_and_is_not_returned(client, model, greedy):
    full = greedy.choices[0].message.content
    words = full.split()
    stop = words[len(words) // 2]  # a word from the middle of the greedy reply
    cut = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=12, temperature=0,
                                         stop=[stop, "never-appears"])
    assert cut.choices[0].message.content == full[:full.index(stop)]
    assert cut.choices[0].finish_reason == "stop" and cut.usage.completion_tokens < 12
    streamed = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=12, temperature=0,
                                              stop=stop, stream=True)
    chunks = list(streamed)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == full[:full.index(stop)]
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_eos_is_finish_reason_stop(client, model):
    reply = client.chat.completions.create(model=model, max_tokens=16, temperature=0,
                                           messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert reply.usage.completion_tokens < 16 and reply.choices[0].finish_reason == "stop"


def test_sampling_is_reproducible_with_a_seed(client, model, greedy):
    def sample(seed: int) -> str:
        return client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=8, temperature=1.2,
                                              top_p=0.95, seed=seed).choices[0].message.content

    first = sample(1)
    assert sample(1) == first
    others = {sample(2), sample(3)}
    assert others - {first}  # other seeds draw other replies


def test_unsupported_requests_are_refused_not_ignored(client, model):
    with pytest.raises(openai.BadRequestError, match="n=1"):
        client.chat.completions.create(model=model, messages=MESSAGES, n=2)
    with pytest.raises(openai.BadRequestError, match="logprobs.*vLLM"):
        client.chat.completions.create(model=model, messages=MESSAGES, logprobs=True)
    with pytest.raises(openai.NotFoundError, match="not served"):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


def test_langchain_chat_openai_streams(smollm2_server, model, greedy):
    """LangChain's ChatOpenAI (which streams with usage by default) against the server, as a LangChain app would."""
    chat_openai = pytest.importorskip("langchain_openai").ChatOpenAI
    llm = chat_openai(base_url=smollm2_server, api_key="unused", model=model, temperature=0, max_tokens=12,
                      max_retries=0, stream_usage=True)
    chunks = list(llm.stream(MESSAGES))
    assert len(chunks) >= 3 and "".join(c.content for c in chunks) == greedy.choices[0].message.content
    usage = sum(chunks[1:], chunks[0]).usage_metadata
    assert usage["output_tokens"] == 12 and usage["input_tokens"] == greedy.usage.prompt_tokens
