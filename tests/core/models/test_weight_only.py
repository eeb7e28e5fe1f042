"""Weight-only bfloat16: the weights are stored in bfloat16, the forward pass returns float32 close to float32's."""

from __future__ import annotations

import pytest


def _tiny(tie: bool):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tie)
    return Qwen2ForCausalLM(config).eval()


@pytest.mark.parametrize("tie", [True, False])
def test_weights_are_bf16_and_outputs_float32_close_to_float32(tie):
    import torch
    from clinrag.core.models.weight_only import (
        Bf16WeightHead,
        Bf16WeightLinear,
        has_bf16_weights,
        to_bf16_weights,
        weight_bytes,
    )

    model = _tiny(tie)
    ids = torch.randint(0, 512, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = model(ids).logits
    before = weight_bytes(model)
    to_bf16_weights(model)
    assert has_bf16_weights(model) and isinstance(model.lm_head, Bf16WeightHead)
    linears = [m for m in model.modules() if isinstance(m, Bf16WeightLinear)]
    assert len(linears) == 2 * 7 + 1  # q k v o gate up down per layer, and the head
    assert all(m.weight.dtype == torch.bfloat16 for m in linears)
    assert model.get_input_embeddings().weight.dtype == torch.bfloat16
    assert model.model.layers[0].self_attn.q_proj.bias.dtype == torch.float32  # biases stay float32
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # norms: float32, so model.dtype is float32
    assert model.dtype == torch.float32
    assert (model.lm_head.weight is model.get_input_embeddings().weight) == tie  # a tied table is stored once
    assert weight_bytes(model) < 0.55 * before
    with torch.inference_mode():
        out = model(ids).logits
    assert out.dtype == torch.float32
    assert torch.allclose(out, ref, atol=2e-2, rtol=0), float((out - ref).abs().max())
    assert not torch.equal(out, ref)  # really computed from the rounded weights
    assert (out.argmax(-1) == ref.argmax(-1)).float().mean() >= 0.9


def test_head_recomputes_its_top_logits_in_float32():
    import torch
    from clinrag.core.models.weight_only import (
        TOP_EXACT,
        Bf16WeightHead,
        Bf16WeightLinear,
    )

    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 1000, bias=False)
    head = Bf16WeightHead(linear)
    x = torch.randn(3, 2, 64)
    y = head(x)
    exact = x @ head.weight.float().T  # float32 products with the (exactly upcast) stored weights
    top = Bf16WeightLinear.forward(head, x).topk(TOP_EXACT, dim=-1).indices  # the candidates: bfloat16's top 8
    assert not torch.allclose(Bf16WeightLinear.forward(head, x), exact, atol=1e-4, rtol=0)  # rounded elsewhere
    assert torch.allclose(y.gather(-1, top), exact.gather(-1, top), atol=1e-5, rtol=0)
    assert torch.equal(y.argmax(-1), exact.argmax(-1))
    assert y.dtype == torch.float32 and y.shape == (3, 2, 1000)


def test_a_strided_last_position_slice_does_not_copy_the_weight():
    """A prefill hands the head ``hidden[:, -1:, :]``, a strided 3-D view. F.linear on it in bfloat16 once took a
    batched-matmul path that copied the whole weight first (the stand-in's head: 259 MB and ~0.9 s per prefill
    forward); the product must allocate about its output, not the weight."""
    import torch
    from clinrag.core.models.weight_only import Bf16WeightHead
    from torch.profiler import ProfilerActivity, profile

    head = Bf16WeightHead(torch.nn.Linear(512, 8192, bias=False))  # an 8 MB bfloat16 weight
    hidden = torch.randn(1, 37, 512)
    x = hidden[:, -1:, :]
    assert x.stride(0) != x.stride(1) * x.shape[1]  # not a 2-D matrix by a view: what sent F.linear astray
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        y = head(x)
    weight_bytes = head.weight.numel() * head.weight.element_size()
    biggest = max(e.self_cpu_memory_usage for e in prof.key_averages())
    assert 0 < biggest < weight_bytes / 4, biggest
    assert y.shape == (1, 1, 8192) and torch.equal(y, head(torch.empty(1, 1, 512).copy_(x)))


@pytest.mark.slow
def test_loader_gives_a_weight_only_model_that_decodes(tiny_qwen2_dir, tmp_path, monkeypatch):
    import torch
    from clinrag.core.models.loading import load_causal_lm
    from clinrag.core.models.weight_only import has_bf16_weights
    from clinrag.plugins.generators.decoding import greedy_generate

    monkeypatch.setenv("CLINRAG_CACHE", str(tmp_path))
    model, tok = load_causal_lm(str(tiny_qwen2_dir), dtype="bfloat16-weights", device="cpu")
    assert has_bf16_weights(model) and model.dtype == torch.float32
    exact, _ = load_causal_lm(str(tiny_qwen2_dir), dtype="float32", device="cpu")
    assert not has_bf16_weights(exact)  # float32 stays one option away, untouched
    prompts = [tok("chest pain")["input_ids"], tok("How is asthma treated?")["input_ids"]]
    got = greedy_generate(model, prompts, max_new_tokens=4, eos_ids=[], pad_id=int(tok.pad_token_id))
    assert [len(r) for r in got] == [4, 4]
    with torch.inference_mode():
        ids = torch.tensor([prompts[1]])
        assert torch.allclose(model(ids).logits, exact(ids).logits, atol=2e-2, rtol=0)

