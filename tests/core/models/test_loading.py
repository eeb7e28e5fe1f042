"""Model sources (hub id / folder / .gguf), load errors, and PEFT adapters with an extended vocabulary."""

from __future__ import annotations

import pytest
from clinrag.core.errors import ModelLoadError
from clinrag.core.models.loading import load_causal_lm, resolve_source


def test_resolve_source_kinds(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    gguf = tmp_path / "x.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_source(str(folder)).kind == "folder"
    src = resolve_source(str(gguf))
    assert (src.kind, src.gguf_file) == ("gguf", "x.gguf")
    assert resolve_source("Qwen/Qwen2.5-0.5B-Instruct").kind == "hub"
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_source(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_source("./no/such/folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_source(str(empty))


def test_hub_id_offline_is_a_model_load_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE=1"):
        load_causal_lm("nonexistent-org/not-a-model-xyz")


def test_adapter_folder_without_config_is_rejected(smollm2_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="adapter_config.json"):
        load_causal_lm(str(smollm2_dir), adapter=str(tmp_path))


@pytest.mark.slow
def test_adapter_with_extended_vocab_resizes_base_before_loading(smollm2_dir, tmp_path):
    """A LoRA adapter trained after adding tokens (embeddings saved with it) loads onto the original base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(smollm2_dir))
    base_rows = len(tok)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=base_rows, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    base_dir, adapter_dir = tmp_path / "base", tmp_path / "adapter"
    LlamaForCausalLM(cfg).save_pretrained(base_dir)
    tok.save_pretrained(base_dir)

    # "Fine-tuning": add tokens, grow, wrap with LoRA (+ the resized embeddings saved in full), save.
    tok.add_tokens(["<troponin>", "<stemi>", "<ecg>"])
    trained = LlamaForCausalLM.from_pretrained(base_dir)
    trained.resize_token_embeddings(len(tok), mean_resizing=False)
    peft_model = get_peft_model(trained, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                    modules_to_save=["embed_tokens", "lm_head"]))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # make the adapter matter
    peft_model.save_pretrained(adapter_dir)
    tok.save_pretrained(adapter_dir)

    model, loaded_tok = load_causal_lm(str(base_dir), adapter=str(adapter_dir), device="cpu")
    assert len(loaded_tok) == base_rows + 3
    assert model.get_input_embeddings().weight.shape[0] == base_rows + 3
    ids = loaded_tok("an <stemi> on the <ecg>", return_tensors="pt")["input_ids"]
    assert ids.max().item() >= base_rows  # the new tokens are used
    peft_model.eval()
    with torch.no_grad():
        expected = peft_model(input_ids=ids).logits
        got = model(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-5)
    with torch.no_grad():
        plain = LlamaForCausalLM.from_pretrained(base_dir)
        plain.resize_token_embeddings(len(tok), mean_resizing=False)
        assert not torch.allclose(plain(input_ids=ids).logits, got, atol=1e-3)  # the adapter is really applied

    # For answering, the adapter is folded into the weights (no LoRA wrapper left to run), same logits
    from peft import PeftModel

    merged, merged_tok = load_causal_lm(str(base_dir), adapter=str(adapter_dir), device="cpu", merge_adapter=True)
    assert isinstance(model, PeftModel) and not isinstance(merged, PeftModel)
    assert not any("lora" in name for name, _ in merged.named_modules())
    assert len(merged_tok) == base_rows + 3 and merged.get_input_embeddings().weight.shape[0] == base_rows + 3
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, expected, atol=1e-5)


def test_inference_dtype_is_bf16_only_where_the_cpu_computes_it():
    import torch
    from clinrag.core.defaults import CPU_ANSWER_DTYPE
    from clinrag.core.models.precision import cpu_computes_bf16, resolve_inference_dtype

    wanted = {"float32": torch.float32, "bfloat16": torch.bfloat16}.get(CPU_ANSWER_DTYPE, CPU_ANSWER_DTYPE)
    expected = wanted if cpu_computes_bf16() else torch.float32
    assert resolve_inference_dtype(None, "cpu") == expected and resolve_inference_dtype("auto", "cpu") == expected
    assert resolve_inference_dtype("float32", "cpu") is torch.float32  # the exact path on request
    assert resolve_inference_dtype("bf16-weights", "cpu") == "bfloat16-weights"  # weight-only, named explicitly
    assert resolve_inference_dtype(torch.float16, "cpu") is torch.float16
