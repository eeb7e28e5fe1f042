"""Completion-only loss that runs the LM head on the label positions only (CPU and other non-Triton devices).

TRL 1.16's ``SFTTrainer`` computes the loss through a fused, chunked LM head. On CUDA/XPU it scores only the
positions that carry a label; everywhere else it scores **every** position (to keep tile shapes fixed for
compilers such as Neuron) and also computes entropy and top-1 over the whole vocabulary for its metrics, then
recomputes all of it in the backward. With completion-only loss most positions are prompt tokens, so on CPU the
head — the largest matrix of a small model with a 152k vocabulary — does several times the work the loss needs
(``benchmarks/bench_train.py`` measured it at 0.5× the throughput of a plain padded ``Trainer``).

:func:`label_position_loss` asks the model for logits at the label positions only (``logits_to_keep`` with an
index tensor; with padding-free packing the batch is one row, so that is exactly the completion tokens) and takes
the same negative log-likelihood, normalised the same way, plus the same two metrics. ``tests/finetune/
test_label_head.py`` checks loss and gradients equal TRL's fused head.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any


@dataclass
class LabelLoss:
    loss: Any  # scalar tensor with grad
    entropy_sum: float
    correct: int
    count: int  # label tokens in this micro-batch


def accepts_index_logits_to_keep(model: Any) -> bool:
    """The causal-LM forward takes ``logits_to_keep`` (transformers 4.50+ models accept an index tensor there)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT
    inner = getattr(inner, "module", inner)  # DDP
    try:
        return "logits_to_keep" in inspect.signature(type(inner).forward).parameters
    except (TypeError, ValueError):
        return False


def label_position_loss(model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> LabelLoss:
    """Mean next-token NLL over the positions whose (shifted) label is not ``-100``.

    Divides by ``num_items_in_batch`` when the trainer passes it (gradient accumulation), else by the label count:
    the same reduction as TRL's fused head and transformers' ``ForCausalLMLoss``.
    """
    import torch

    labels = inputs["labels"]
    targets_all = labels[:, 1:]
    positions = (targets_all != -100).any(dim=0).nonzero().squeeze(-1)  # hidden position t predicts token t + 1
    forward = {k: v for k, v in inputs.items() if k != "labels"}
    forward["use_cache"] = False
    logits = model(**forward, logits_to_keep=positions).logits  # (batch, len(positions), vocab)
    targets = targets_all[:, positions]
    mask = targets != -100
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    picked = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1).masked_fill(~mask, 0.0)
    count = int(mask.sum())
    denominator = torch.as_tensor(count if num_items_in_batch is None else num_items_in_batch,
                                  device=picked.device).clamp(min=1)
    loss = -picked.sum() / denominator
    with torch.no_grad():
        entropy = -(log_probs.exp() * log_probs).sum(-1).masked_fill(~mask, 0.0)
        correct = (logits.argmax(-1) == targets) & mask
    return LabelLoss(loss=loss, entropy_sum=float(entropy.sum()), correct=int(correct.sum()), count=count)
