"""Export: base resized like training, adapter (LoRA + trainable token rows) loaded and merged; the merged folder
gives the same logits as base + adapter; a tokenizer that does not extend the base's is refused before loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from clinrag.core.errors import ModelLoadError
from clinrag.finetune.export import export_merged, load_adapter_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory, tiny_qwen2_dir) -> tuple[Path, list[int]]:
    """A real PEFT adapter folder in the format `clinrag finetune` writes, with non-zero (random) weights so the
    merge has something to prove: LoRA B matrices and the new-token rows are randomised."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_qwen2_dir))
    tok.add_tokens(["stemiwordx", "troponinzz"])
    ids = tok.convert_tokens_to_ids(["stemiwordx", "troponinzz"])
    model = AutoModelForCausalLM.from_pretrained(str(tiny_qwen2_dir))
    peft_model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules="all-linear",
                                                  trainable_token_indices={"embed_tokens": ids}))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name or "trainable_tokens_delta" in name:
                p.copy_(torch.randn_like(p) * 0.05)
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    peft_model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    (out / "added_tokens_manifest.json").write_text(json.dumps({"added_ids": ids}))
    return out, ids


def test_merged_logits_equal_adapter_logits(adapter_dir, tiny_qwen2_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter, ids = adapter_dir
    out = export_merged(str(tiny_qwen2_dir), adapter, tmp_path / "merged")
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    assert (out / "added_tokens_manifest.json").exists() and not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(str(out)).eval()  # plain transformers, no PEFT
    peft_model, tok = load_adapter_model(str(tiny_qwen2_dir), adapter)
    assert len(AutoTokenizer.from_pretrained(str(out))) == len(tok)
    x = torch.tensor([tok("stemiwordx then troponinzz rises")["input_ids"] + ids])
    with torch.no_grad():
        want = peft_model(input_ids=x).logits
        got = merged(input_ids=x).logits
        base = AutoModelForCausalLM.from_pretrained(str(tiny_qwen2_dir))(input_ids=x).logits
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(base, want, atol=1e-3)  # the adapter really changes the model


def test_adapter_whose_tokenizer_does_not_match_the_base(adapter_dir, tiny_qwen2_dir, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    adapter, _ = adapter_dir
    foreign = tmp_path / "foreign"
    shutil.copytree(adapter, foreign)
    for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (foreign / f).unlink(missing_ok=True)
    backend = Tokenizer(models.WordLevel({"<unk>": 0, "hello": 1}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>").save_pretrained(str(foreign))
    with pytest.raises(ModelLoadError, match="does not match the base model's tokenizer"):
        export_merged(str(tiny_qwen2_dir), foreign, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_not_an_adapter_folder(tiny_qwen2_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="not an adapter folder.*full model"):
        export_merged(str(tiny_qwen2_dir), tiny_qwen2_dir, tmp_path / "x")
