"""Batched greedy decoding with a shared prefix KV cache gives the same tokens as one prompt at a time."""

from __future__ import annotations

import pytest
from clinrag.plugins.generators.decoding import (
    DecodeStats,
    common_prefix_length,
    greedy_generate,
)


def test_common_prefix_length():
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix_length([[5, 6]]) == 2
    assert common_prefix_length([[1], [2]]) == 0
    assert common_prefix_length([]) == 0


@pytest.mark.slow
def test_batched_prefix_cached_equals_sequential_generate(smollm2_dir):
    import torch
    from clinrag.plugins.generators.hf import HFChatLLM

    llm = HFChatLLM(str(smollm2_dir), max_new_tokens=12, dtype="float32")  # the exact path
    scenario = ("Clinical scenario: A 58-year-old man has crushing central chest pain for one hour. ECG shows ST "
                "elevation in II, III and aVF. Blood pressure 100/60 mmHg.")
    questions = ["What is the diagnosis?", "Which artery is most likely occluded, and why?",
                 "What reperfusion therapy should he receive and how fast?"]
    convs = [[{"role": "system", "content": "You are a careful clinical assistant."},
              {"role": "user", "content": f"{scenario}\n\nQuestion: {q}"}] for q in questions]
    prompts = [llm.encode(c) for c in convs]
    assert len({len(p) for p in prompts}) > 1  # different lengths: padding is exercised

    model, tok = llm.model, llm.tokenizer
    eos = llm.eos_ids()
    sequential = []
    for p in prompts:  # the reference: transformers' own greedy generate, one prompt at a time, no padding
        out = model.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                             max_new_tokens=12, do_sample=False)[0, len(p):].tolist()
        sequential.append([t for t in out[: next((i for i, t in enumerate(out) if t in eos), len(out))]])

    stats = DecodeStats()
    cached = greedy_generate(model, prompts, max_new_tokens=12, eos_ids=eos, pad_id=tok.pad_token_id, stats=stats)
    assert stats.shared_prefix_tokens >= 30  # system + scenario computed once
    assert cached == sequential
    for share, rowwise in ((False, True), (True, False), (False, False)):  # every prefill layout
        assert greedy_generate(model, prompts, max_new_tokens=12, eos_ids=eos, pad_id=tok.pad_token_id,
                               share_prefix=share, rowwise_prefill=rowwise) == sequential, (share, rowwise)
    # Per-row limits (the server's micro-batches): each row stops at its own limit, same tokens.
    limited = greedy_generate(model, prompts, max_new_tokens=[3, 12, 7], eos_ids=eos, pad_id=tok.pad_token_id)
    assert limited == [sequential[0][:3], sequential[1][:12], sequential[2][:7]]
    assert all(len(s) > 0 for s in sequential)


def test_small_batch_linears_same_outputs_and_restored():
    import torch
    from clinrag.plugins.generators.decoding import small_batch_linears

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 48, bias=True), torch.nn.Linear(48, 500, bias=False))
    inputs = [torch.randn(3, 1, 32), torch.randn(1, 32), torch.randn(20, 32), torch.randn(2, 32)]
    with torch.no_grad():
        reference = [model(x) for x in inputs]
        with small_batch_linears(model) as n, small_batch_linears(model):  # nested: still patched inside
            assert n == 2 and all("forward" in m.__dict__ for m in model)
            got = [model(x) for x in inputs]
    assert all("forward" not in m.__dict__ for m in model) and "_clinrag_small_batch" not in model.__dict__
    for g, r in zip(got, reference):
        assert g.shape == r.shape and g.is_contiguous()
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-5)
    model.to(torch.bfloat16)  # other dtypes keep the stock kernel
    with small_batch_linears(model) as n:
        assert n == 0 and all("forward" not in m.__dict__ for m in model)


@pytest.mark.slow
def test_mixed_batch_greedy_rows_unchanged_sampled_rows_seeded_stopped_rows_end(smollm2_dir):
    """A server batch: a greedy row decodes exactly as ``greedy_generate`` beside a sampling row, a seeded row
    repeats itself, and ``on_token`` returning True ends its row there."""
    from clinrag.plugins.generators.decoding import generate_batch
    from clinrag.plugins.generators.hf import HFChatLLM
    from clinrag.plugins.generators.sampling import Sampler

    llm = HFChatLLM(str(smollm2_dir))
    prompts = [llm.encode([{"role": "user", "content": q}])
               for q in ("Name three causes of chest pain.", "What does a troponin test measure?")]
    model, pad, eos = llm.model, llm.tokenizer.pad_token_id, llm.eos_ids()
    greedy = greedy_generate(model, prompts, max_new_tokens=8, eos_ids=eos, pad_id=pad)

    def mixed(seed: int) -> list[list[int]]:
        return generate_batch(model, prompts, max_new_tokens=8, eos_ids=eos, pad_id=pad,
                              samplers=[Sampler(1.5, seed=seed), None])

    first = mixed(11)
    assert first[1] == greedy[1] and first == mixed(11)
    assert any(mixed(s)[0] != first[0] for s in (12, 13, 14))  # other seeds, other tokens
    seen: list[tuple[int, int]] = []
    stopped = generate_batch(model, prompts, max_new_tokens=8, eos_ids=eos, pad_id=pad,
                             on_token=lambda row, t: seen.append((row, t)) or (row == 0 and len(seen) >= 3))
    assert stopped[0] == greedy[0][:len(stopped[0])] and 1 <= len(stopped[0]) <= 2 and stopped[1] == greedy[1]
    assert [t for r, t in seen if r == 1] == greedy[1]
