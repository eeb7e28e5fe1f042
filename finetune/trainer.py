"""clinrag's ``SFTTrainer``: TRL's trainer plus the fused-head workaround and, off CUDA/XPU, the label-position loss."""

from __future__ import annotations

from typing import Any

from .label_head import accepts_index_logits_to_keep, label_position_loss
from .trl_compat import (
    aux_loss_enabled,
    log_token_metrics,
    patch_trainable_tokens_lm_head,
    sequence_parallel,
    use_triton,
)


def make_trainer_class() -> type:
    """The trainer class (built on first use: importing TRL imports torch)."""
    from trl import SFTTrainer

    class ClinragSFTTrainer(SFTTrainer):
        """``SFTTrainer`` with :func:`patch_trainable_tokens_lm_head` applied once the model is wrapped, and, off
        CUDA/XPU, the loss taken from the label positions only (:mod:`clinrag.finetune.label_head`)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            patch_trainable_tokens_lm_head(self.model)
            self.loss_head = "label_positions" if self._label_head_applies() else "trl_fused"

        def _label_head_applies(self) -> bool:
            return (not use_triton(self.args.device) and self.compute_loss_func is None
                    and self.label_smoother is None and self.args.loss_type == "nll"
                    and not aux_loss_enabled(self) and not sequence_parallel(self.accelerator)
                    and accepts_index_logits_to_keep(self.model))

        def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if return_outputs or self.loss_head != "label_positions" or "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)
            import torch

            out = label_position_loss(model, inputs, num_items_in_batch)
            loss = out.loss
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * (self.accelerator.num_processes // self.get_tp_size())
            # The metrics TRL logs, from the same numbers its fused head would give. These are sums over the
            # micro-batch, so they are summed across ranks with reduce(): gather_for_metrics treats its input as a
            # batch of samples and, on an uneven last eval batch, cuts it to the remainder (a 3-number tensor
            # became 1 number and crashed evaluation with 2 eval examples).
            mode = "train" if self.model.training else "eval"
            stats = torch.tensor([out.count, out.entropy_sum, out.correct], dtype=torch.float64, device=loss.device)
            count, entropy_sum, correct = self.accelerator.reduce(stats, reduction="sum").tolist()
            tokens = None
            if mode == "train":
                if "attention_mask" in inputs:
                    local = inputs["attention_mask"].sum()
                else:  # padding-free packing: one row, every position is a real token
                    local = torch.tensor(inputs["position_ids"].size(1), device=loss.device)
                tokens = int(self.accelerator.reduce(local.to(torch.int64), reduction="sum").item())
            log_token_metrics(self, mode, count=count, entropy_sum=entropy_sum, correct=correct, train_tokens=tokens)
            return loss

    return ClinragSFTTrainer
