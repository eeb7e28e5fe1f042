"""The label-position loss equals TRL's fused LM head: same loss, same gradients, same metrics."""

from __future__ import annotations

import pytest
from clinrag.finetune.label_head import (
    accepts_index_logits_to_keep,
    label_position_loss,
)


def _lora_model(model_dir):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))  # what SFTTrainer installs
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    return model


def _batches():
    import torch

    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 150_000, (1, 40), generator=g)
    labels = ids.clone()
    labels[0, :12] = -100  # prompt of the first packed example
    labels[0, 20:31] = -100  # prompt of the second
    position_ids = torch.cat([torch.arange(20), torch.arange(20)])[None]
    packed = {"input_ids": ids, "labels": labels, "position_ids": position_ids}  # padding-free, one row
    ids2 = torch.randint(0, 150_000, (2, 16), generator=g)
    attn = torch.ones_like(ids2)
    attn[1, 11:] = 0
    labels2 = ids2.clone()
    labels2[:, :6] = -100
    labels2[1, 11:] = -100
    padded = {"input_ids": ids2, "labels": labels2, "attention_mask": attn}
    return {"packed": packed, "padded": padded}


@pytest.mark.parametrize("layout", ["packed", "padded"])
@pytest.mark.parametrize("num_items", [None, 37])
def test_equals_trl_fused_head(tiny_qwen2_dir, layout, num_items):
    import torch

    model = _lora_model(tiny_qwen2_dir)
    assert accepts_index_logits_to_keep(model)
    inputs = _batches()[layout]
    trainable = [p for p in model.parameters() if p.requires_grad]

    fused = model(**inputs, fused_lm_head=True, num_items_in_batch=num_items)
    fused.loss.backward()
    fused_grads = [p.grad.clone() for p in trainable]
    model.zero_grad()

    ours = label_position_loss(model, inputs, num_items)
    ours.loss.backward()
    torch.testing.assert_close(ours.loss, fused.loss, rtol=1e-5, atol=1e-6)
    for g_ours, g_fused in zip([p.grad for p in trainable], fused_grads):
        torch.testing.assert_close(g_ours, g_fused, rtol=1e-3, atol=1e-6)  # summation order differs
    n = int(fused.label_mask.sum())
    assert ours.count == n > 0
    assert ours.correct == int(fused.is_top1.sum())
    assert ours.entropy_sum == pytest.approx(float(fused.entropy.detach().sum()), rel=1e-5)


def test_no_label_positions_gives_zero_loss_with_grad(tiny_qwen2_dir):
    model = _lora_model(tiny_qwen2_dir)
    inputs = _batches()["packed"]
    inputs["labels"][:] = -100
    out = label_position_loss(model, inputs)
    assert out.count == 0 and float(out.loss) == 0.0
    out.loss.backward()  # connected to the graph: a fully masked micro-batch must not break backward()
