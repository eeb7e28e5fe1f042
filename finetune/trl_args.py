"""Pure helpers: a :class:`~clinrag.finetune.config.FinetuneConfig` in, TRL/PEFT/bitsandbytes objects out.

Like TRL's ``scripts/sft.py``, the model and adapter settings become a ``trl.ModelConfig`` and TRL's own
``get_quantization_config`` / ``get_peft_config`` build the bitsandbytes and LoRA configs from it; clinrag adds the
trainable rows of an extended vocabulary. ``to_sft_config`` derives the ``SFTConfig`` clinrag trains with, then
applies every SFTConfig field set in the ``train`` section (they win). Imports happen inside the functions, so
reading a config never imports torch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .config_schema import Batching, ConfigError, FinetuneConfig, Mode


def _value(choice: Any) -> str:
    return str(getattr(choice, "value", choice))


def to_model_config(cfg: FinetuneConfig) -> Any:
    """The run's model and adapter settings as TRL's ``ModelConfig`` (what ``trl sft`` parses from its flags)."""
    from trl import ModelConfig

    m, p = cfg.model, cfg.peft
    return ModelConfig(
        model_name_or_path=m.name_or_path,
        dtype=_value(m.bnb_4bit_compute_dtype if p.mode == Mode.QLORA else m.dtype),
        attn_implementation=m.attn_implementation,
        use_peft=p.mode != Mode.FULL, lora_r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout,
        lora_target_modules=list(p.target_modules), lora_modules_to_save=p.modules_to_save,
        use_rslora=p.use_rslora, use_dora=p.use_dora,
        load_in_4bit=p.mode == Mode.QLORA, bnb_4bit_quant_type=_value(m.bnb_4bit_quant_type),
        use_bnb_nested_quant=m.use_bnb_nested_quant, bnb_4bit_quant_storage=m.bnb_4bit_quant_storage,
    )


def to_peft_config(cfg: FinetuneConfig, new_token_ids: list[int] | None = None, *,
                   untied_head: str | None = None) -> Any:
    """The PEFT ``LoraConfig`` (None in full mode): LoRA on every linear projection by default; the new vocabulary
    rows trained exactly via ``trainable_token_indices``.

    With tied embeddings the LM head shares the input rows, so training ``embed_tokens`` trains both. A model with
    its own output matrix (``tie_word_embeddings: false``, e.g. the Qwen2.5-Coder stand-in) names that layer in
    ``untied_head`` (the caller reads the model's config): its new rows train too, or the model could read the new
    tokens but would score them with their frozen initial rows forever.
    """
    from trl import get_peft_config

    lora = get_peft_config(to_model_config(cfg))
    if lora is None or not (new_token_ids and cfg.peft.train_new_tokens):
        return lora
    ids = sorted(int(i) for i in new_token_ids)
    layers = {"embed_tokens": ids}
    if untied_head:
        layers[untied_head] = list(ids)
    # replace() re-runs LoraConfig's own checks with the new field set.
    return dataclasses.replace(lora, trainable_token_indices=layers)


def to_bnb_config(cfg: FinetuneConfig) -> Any:
    """4-bit quantisation for qlora (NF4, double quantisation, bf16 compute by default); None otherwise.

    TRL's helper computes in ``ModelConfig.dtype``; :func:`to_model_config` sets that to ``model.bnb_4bit_compute_dtype``.
    """
    if cfg.peft.mode != Mode.QLORA:
        return None
    from trl import get_quantization_config

    return get_quantization_config(to_model_config(cfg))


def to_sft_config(cfg: FinetuneConfig, output_dir: str | Path, *, has_eval: bool, cuda: bool,
                  **changes: Any) -> Any:
    """TRL ``SFTConfig``: completion-only loss, eval/save every ``eval_steps``, best checkpoint by eval loss; then
    ``changes`` (what a caller such as continual pre-training needs), then the SFTConfig fields of ``cfg.train.sft``."""
    from trl import SFTConfig

    t = cfg.train
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps if t.max_steps > 0 else -1,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the total steps
        lr_scheduler_type=t.lr_scheduler,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum,
        max_length=t.max_length,
        completion_only_loss=True,
        packing=t.batching == Batching.PACKING,
        packing_strategy="bfd",
        train_sampling_strategy="group_by_length" if t.batching == Batching.LENGTH_GROUPED else "random",
        logging_steps=t.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=t.eval_steps,
        save_total_limit=t.save_total_limit,
        seed=t.seed,
        data_seed=t.seed,
        report_to="none",
        use_cpu=t.cpu or not cuda,
        bf16=cuda and not t.cpu,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    # transformers 5 renamed it and warns on the old name (a FutureWarning a user can do nothing about)
    names = {f.name for f in dataclasses.fields(SFTConfig)}
    kwargs["activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"] = (
        t.gradient_checkpointing)
    if has_eval:
        kwargs.update(eval_strategy="steps", eval_steps=t.eval_steps, load_best_model_at_end=True,
                      metric_for_best_model="eval_loss", greater_is_better=False)
    else:
        kwargs.update(eval_strategy="no")
    kwargs.update(changes)
    kwargs.update(t.sft)
    try:
        return SFTConfig(**kwargs)
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"train section: invalid SFTConfig ({first})") from None
