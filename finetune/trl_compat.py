"""Every use of a private TRL / PEFT / accelerate attribute, in one place (targets TRL 1.16, PEFT 0.17+).

clinrag's trainer (:mod:`clinrag.finetune.trainer`) computes its own loss on CPU and must keep the metrics TRL's
``SFTTrainer`` logs (``entropy``, ``mean_token_accuracy``, ``num_tokens``) — those live in private attributes —
and it works around one PEFT/TRL incompatibility. Nothing else in clinrag touches these internals.
``tests/finetune/test_trl_compat.py`` asserts that each attribute and signature used here still exists, so a
library upgrade that moves one fails there, not in the middle of a training run.
"""

from __future__ import annotations

from typing import Any

#: (module, attribute) pairs this module relies on; the compat test imports each one.
REQUIRED_IMPORTS = (
    ("trl.kernels.chunked_logprob", "_use_triton"),
    ("trl", "SFTTrainer"),
    ("peft.utils.other", "TrainableTokensWrapper"),
    ("accelerate.parallelism_config", "ParallelismConfig"),
)
#: Instance attributes ``SFTTrainer.__init__`` sets that this module reads or writes.
TRAINER_ATTRIBUTES = ("_metrics", "_total_train_tokens", "_tp_size", "aux_loss_enabled")


def use_triton(device: Any) -> bool:
    """Whether TRL's fused LM head runs its Triton kernel on ``device`` (then it already scores label positions only)."""
    from trl.kernels.chunked_logprob import _use_triton

    return bool(_use_triton(device))


def aux_loss_enabled(trainer: Any) -> bool:
    """MoE router auxiliary loss on (SFTTrainer adds it to the fused head's loss)."""
    return bool(trainer.aux_loss_enabled)


def sequence_parallel(accelerator: Any) -> bool:
    """Sequence or context parallelism on (the batch's positions are split across ranks)."""
    pc = getattr(accelerator, "parallelism_config", None)  # None without a ParallelismConfig
    return pc is not None and bool(pc.sp_enabled or pc.cp_enabled)


def tp_size(trainer: Any) -> int:
    """Tensor-parallel degree (TP ranks see the same batch, so summed token counts repeat by this factor)."""
    return int(trainer._tp_size)


def log_token_metrics(trainer: Any, mode: str, *, count: float, entropy_sum: float, correct: float,
                      train_tokens: int | None = None) -> None:
    """Record the per-step metrics SFTTrainer logs (its ``log`` averages ``_metrics[mode]`` lists)."""
    metrics = trainer._metrics[mode]
    metrics["entropy"].append(entropy_sum / count if count > 0 else 0.0)
    metrics["mean_token_accuracy"].append(correct / count if count > 0 else 0.0)
    if train_tokens is not None:
        trainer._total_train_tokens += int(train_tokens) // tp_size(trainer)
    metrics["num_tokens"] = [trainer._total_train_tokens]


def total_train_tokens(trainer: Any) -> int:
    """Real (non-pad) tokens trained on so far, as SFTTrainer counts them."""
    return int(trainer._total_train_tokens)


def patch_trainable_tokens_lm_head(model: Any) -> bool:
    """Give PEFT's ``TrainableTokensWrapper`` around the LM head the ``bias`` attribute TRL's fused LM head reads.

    TRL 1.16's ``SFTTrainer`` computes the loss with a fused LM head that reads ``lm_head.weight`` and
    ``lm_head.bias``. With ``trainable_token_indices`` and tied embeddings, PEFT wraps the LM head in a
    ``TrainableTokensWrapper`` whose ``weight`` is the merged (base + trainable rows) matrix, differentiable in the
    trainable rows, but which has no ``bias`` → ``AttributeError`` on the first step. The wrapped module's own
    bias (``None`` for Qwen2/Llama heads) is exactly what the fused head needs. Returns True if a patch was applied.
    ``tests/finetune/test_trl_compat.py::test_fused_head_crash_still_happens_without_patch`` fails once TRL/PEFT
    fix it.
    """
    head = model.get_output_embeddings()
    if type(head).__name__ != "TrainableTokensWrapper":
        return False
    try:
        head.bias  # noqa: B018 - probing
        return False
    except AttributeError:
        pass
    original = head.original_module if hasattr(head, "original_module") else None
    object.__setattr__(head, "bias", getattr(original, "bias", None))
    return True


def keep_4bit_weights_trainable(model: Any) -> int:
    """Stop bitsandbytes from repacking 4-bit CPU weights for inference during evaluation; returns the layers fixed.

    On CPUs with AVX512-BF16, ``bnb.nn.Linear4bit.forward`` in eval mode converts its weight to an inference-only
    packed layout (``quant_state.packing_format_for_cpu``) and never converts back, so the first training step after
    an evaluation adds the bias in place on that path and autograd fails ("a view of a leaf Variable that requires
    grad is being used in an in-place operation"). Evaluating on the training layout is slower but correct.
    """
    import bitsandbytes as bnb

    fixed = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit) and getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
            fixed += 1
    return fixed


def trainable_token_layers(model: Any) -> list[str]:
    """Names of the layers whose new-token rows train: PEFT's ``TrainableTokensWrapper`` modules, except the tied
    copies (a tied LM head follows the input embedding's adapter and stores nothing of its own)."""
    return [name.removeprefix("base_model.model.") for name, module in model.named_modules()
            if type(module).__name__ == "TrainableTokensWrapper" and not module.token_adapter.tied_adapter]
