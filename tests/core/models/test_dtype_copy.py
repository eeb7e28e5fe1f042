"""A float32 folder loaded in bfloat16 maps a cached bfloat16 copy, written once, with identical values."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_bf16_load_writes_one_copy_and_reuses_it(smollm2_dir, tmp_path, monkeypatch):
    import torch
    from clinrag.core.models import dtype_copy
    from clinrag.core.models.loading import load_causal_lm

    monkeypatch.setenv("CLINRAG_CACHE", str(tmp_path))
    assert dtype_copy.wants_copy(smollm2_dir, "bfloat16") and not dtype_copy.wants_copy(smollm2_dir, "float32")
    model, tok = load_causal_lm(str(smollm2_dir), dtype="bfloat16", device="cpu")
    copy = dtype_copy.copy_dir(smollm2_dir, "bfloat16")
    assert copy.parent == tmp_path / "converted" and (copy / "clinrag-conversion.json").is_file()
    assert dtype_copy.stored_dtype(copy) == "bfloat16" and not dtype_copy.wants_copy(copy, "bfloat16")
    assert (copy / "tokenizer_config.json").is_file() and tok("chest pain")["input_ids"]
    assert model.dtype == torch.bfloat16
    weights = copy / "model.safetensors"
    assert weights.stat().st_size < 0.6 * (smollm2_dir / "model.safetensors").stat().st_size
    written = weights.stat().st_mtime_ns
    exact, _ = load_causal_lm(str(smollm2_dir), dtype="float32", device="cpu")  # float32 maps the original
    assert exact.dtype == torch.float32
    again, _ = load_causal_lm(str(smollm2_dir), dtype="bfloat16", device="cpu")
    assert weights.stat().st_mtime_ns == written  # not rewritten
    name = "model.layers.0.mlp.down_proj.weight"
    ref = dict(exact.named_parameters())[name].detach().to(torch.bfloat16)
    assert torch.equal(dict(again.named_parameters())[name].detach(), ref)  # the rounded float32 values, exactly
    assert json.loads((copy / "clinrag-conversion.json").read_text())["dtype"] == "bfloat16"
