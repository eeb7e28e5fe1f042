"""The library internals clinrag.plugins.generators.hf_compat relies on still hold in the installed transformers
and torch. Tiny randomly initialised models (no download) of the families the project decodes with: Llama
(SmolLM2) and Qwen2 (Qwen2.5). A failure here after an upgrade names the assumption that broke."""

from __future__ import annotations

import pytest
import torch
from clinrag.plugins.generators import hf_compat
from transformers import (
    DynamicCache,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

TINY = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64)


def _tiny(config_cls, model_cls, **extra):
    torch.manual_seed(0)
    return model_cls(config_cls(**TINY, **extra)).eval()


@pytest.fixture(params=[(LlamaConfig, LlamaForCausalLM), (Qwen2Config, Qwen2ForCausalLM)], ids=["llama", "qwen2"])
def model(request):
    return _tiny(*request.param)


def _logits(model, ids, cache, start):
    positions = torch.arange(start, start + len(ids))[None]
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids]), position_ids=positions, use_cache=True,
                     **{hf_compat.cache_parameter(model): cache}).logits[0, -1]


def test_forward_takes_the_inputs_decoding_passes(model):
    # A False here silently sends every hf generation down the slow un-shared path (hf.py's fallback).
    assert hf_compat.takes_kv_inputs(model)
    assert hf_compat.takes_logits_to_keep(model)
    assert hf_compat.cache_parameter(model) in hf_compat.CACHE_PARAMETERS
    cache = hf_compat.new_cache(model)
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([[1, 2, 3]]), logits_to_keep=1, use_cache=True,
                    **{hf_compat.cache_parameter(model): cache})
    assert out.logits.shape == (1, 1, TINY["vocab_size"])  # only the last position's logits
    assert cache.get_seq_length() == 3  # the cache went in under the declared name and was filled


def test_a_model_without_a_cache_parameter_is_not_decoded_with_one():
    class Plain(torch.nn.Module):
        config = LlamaConfig(**TINY)

        def forward(self, input_ids, attention_mask=None, position_ids=None):
            return input_ids

    assert hf_compat.cache_parameter(Plain()) is None and not hf_compat.takes_kv_inputs(Plain())


def test_a_new_cache_is_dynamic_with_editable_layers_shaped_batch_heads_seq_dim(model):
    cache = hf_compat.new_cache(model)
    assert isinstance(cache, DynamicCache) and len(cache.layers) == TINY["num_hidden_layers"]
    _logits(model, [5, 6, 7, 8, 9], cache, 0)
    assert hf_compat.kv_editable(cache)
    head_dim = TINY["hidden_size"] // TINY["num_attention_heads"]
    for keys, values in hf_compat.layer_kv(cache):
        assert keys.shape == values.shape == (1, TINY["num_key_value_heads"], 5, head_dim)
    assert cache.get_seq_length() == 5


def test_replacing_the_kv_tensors_is_a_complete_edit(model):
    # Truncating the tensors must leave nothing behind that remembers the dropped tokens: decoding on top of
    # the truncated cache equals decoding on top of a cache that only ever saw the kept tokens.
    edited = hf_compat.new_cache(model)
    _logits(model, [5, 6, 7, 8, 9], edited, 0)
    hf_compat.set_layer_kv(edited, [(k[:, :, :3], v[:, :, :3]) for k, v in hf_compat.layer_kv(edited)])
    assert edited.get_seq_length() == 3
    fresh = hf_compat.new_cache(model)
    _logits(model, [5, 6, 7], fresh, 0)
    torch.testing.assert_close(_logits(model, [11], edited, 3), _logits(model, [11], fresh, 3))
    with pytest.raises(ValueError, match="cache layers"):
        hf_compat.set_layer_kv(edited, hf_compat.layer_kv(edited)[:1])


def test_rows_repeat_and_select(model):
    cache = hf_compat.new_cache(model)
    _logits(model, [5, 6, 7], cache, 0)
    hf_compat.repeat_rows(cache, 3)
    assert all(k.shape[0] == v.shape[0] == 3 for k, v in hf_compat.layer_kv(cache))
    hf_compat.select_rows(cache, torch.tensor([0, 2]))
    assert all(k.shape[0] == v.shape[0] == 2 for k, v in hf_compat.layer_kv(cache))
    assert cache.get_seq_length() == 3


def test_a_sliding_window_cache_is_not_editable():
    model = _tiny(MistralConfig, MistralForCausalLM, sliding_window=4)
    cache = hf_compat.new_cache(model)
    _logits(model, [5, 6, 7], cache, 0)
    assert not hf_compat.kv_editable(cache)


def test_forward_override_takes_effect_nests_and_restores():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    calls = []

    def doubled(self, x):
        calls.append(self)
        return torch.nn.functional.linear(x, self.weight, self.bias) * 2

    x = torch.ones(1, 4)
    with torch.no_grad():
        reference = model(x)
        with hf_compat.forward_overridden(model, list(model), doubled):
            with hf_compat.forward_overridden(model, list(model), doubled):
                pass  # the inner exit must not restore the outer override
            overridden = model(x)
        restored = model(x)
    assert calls == list(model)  # nn.Module.__call__ reached the instance attribute, once per layer
    assert torch.equal(overridden, model[1](model[0](x) * 2) * 2)
    assert torch.equal(restored, reference)
    assert all("forward" not in m.__dict__ for m in model)
    assert not [k for m in (model, *model) for k in m.__dict__ if "clinrag" in k]  # no bookkeeping on the modules
