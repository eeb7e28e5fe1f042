"""What a fine-tuning run is configured by: four sections (model, data, peft, train) as dataclasses, their choices.

The dataclass defaults below *are* the defaults (the ``default`` preset changes nothing). Field names follow TRL's
``ModelConfig``/``SFTConfig`` where clinrag has no shorter name of its own, and :data:`ALIASES` accepts TRL's names
for the shorter ones (``train.num_train_epochs`` is ``train.epochs``). Besides the keys here, the ``train`` section
takes every other ``trl.SFTConfig`` field by its own name (``train.report_to``, ``train.optim`` …): those are kept in
:attr:`TrainConfig.sft` and passed to ``SFTConfig`` as given (:mod:`clinrag.finetune.trl_args`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any

from clinrag.core.choices import Choice
from clinrag.core.errors import ClinragError


class ConfigError(ClinragError, ValueError):
    """A fine-tuning config key or value is invalid (names the key and lists valid ones)."""


class DataError(ClinragError, ValueError):
    """Training data cannot be turned into examples (no completions, empty split, …)."""


class Mode(Choice):
    """How the model's weights are trained."""

    QLORA = "qlora"  # base in 4-bit (NF4, double quant, bf16 compute by default) + LoRA adapters
    LORA = "lora"  # base in full/half precision + LoRA adapters
    FULL = "full"  # every weight


class DataFormat(Choice):
    """Which calls of the graph the examples train."""

    PER_QUESTION = "per_question"  # one example per question (+ passages) and one per case summary: what the graph asks
    WHOLE_CASE = "whole_case"  # all questions in, "Summary: … Answers: 1. …" out (the single-pass mode)


class Batching(Choice):
    """How examples become batches."""

    PACKING = "packing"  # best-fit-decreasing packing, padding-free (position_ids reset per example)
    LENGTH_GROUPED = "length_grouped"  # padded per batch to its longest row, rows of similar length grouped
    PADDED = "padded"  # padded per batch to its longest row, random order


class Dtype(Choice):
    """Weights dtype (TRL ``ModelConfig.dtype`` choices); ``auto`` = bf16 on CUDA, fp32 on CPU."""

    AUTO = "auto"
    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"


class ComputeDtype(Choice):
    """dtype the 4-bit layers compute in (bitsandbytes ``bnb_4bit_compute_dtype``)."""

    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"
    FLOAT32 = "float32"


class QuantType(Choice):
    """4-bit data type (bitsandbytes ``bnb_4bit_quant_type``)."""

    NF4 = "nf4"
    FP4 = "fp4"


@dataclass
class ModelConfig:
    #: Hub id or local folder of the base model (a ``clinrag vocab extend`` output folder for an extended vocabulary).
    name_or_path: str = ""
    #: Tokenizer folder if not the model's own (must cover every id of the vocabulary manifest).
    tokenizer: str | None = None
    #: ``added_tokens_manifest.json`` from ``clinrag vocab extend``: its ``added_ids`` become trainable rows.
    vocab_manifest: str | None = None
    #: Weights dtype for lora/full: ``auto`` = bf16 on CUDA, fp32 on CPU.
    dtype: Dtype = Dtype.AUTO
    #: Attention kernel (``sdpa``, ``eager``, ``flash_attention_2`` …).
    attn_implementation: str = "sdpa"
    trust_remote_code: bool = False
    #: qlora: dtype the 4-bit layers compute in (and the dtype of the layers left unquantised).
    bnb_4bit_compute_dtype: ComputeDtype = ComputeDtype.BFLOAT16
    #: qlora: 4-bit data type.
    bnb_4bit_quant_type: QuantType = QuantType.NF4
    #: qlora: double quantisation (quantise the quantisation constants too).
    use_bnb_nested_quant: bool = True
    #: qlora: storage dtype of the packed 4-bit weights (bitsandbytes' default when unset; FSDP wants the compute dtype).
    bnb_4bit_quant_storage: str | None = None


@dataclass
class DataConfig:
    #: Case file (JSONL/JSON/CSV in the case schema) to train on.
    train: str = ""
    #: Explicit eval case file; without it ``eval_fraction`` of the training cases are held out (by case).
    eval: str | None = None
    eval_fraction: float = 0.1
    format: DataFormat = DataFormat.PER_QUESTION
    #: Index folder (``clinrag index build``) for RAFT-style passages; without it examples carry no passages.
    index: str | None = None
    #: Distractor passages retrieved per question (besides the gold evidence).
    distractors: int = 3
    #: Passages in the prompt when the case has no gold evidence for the question.
    k: int = 4
    #: Gold passages per RAFT prompt (0 = every gold id of the question): any one of them answers it.
    gold_passages: int = 0
    #: Each passage's text is cut to this many characters in the prompt (inference shows up to 1200): shorter
    #: passages keep RAFT prompts within a CPU token budget; only the fenced block differs from inference.
    max_chars_per_passage: int = 1200
    #: Train on the reference answer's leading sentences up to this many words (0 = the whole answer): the
    #: answer prompt asks for at most three sentences.
    max_answer_words: int = 0
    #: Also train the per-case summary call (when a case has a ``summary``).
    summaries: bool = True
    #: Use only the first N training cases (0 = all): quick experiments.
    limit: int = 0
    #: Use only the first N eval cases (0 = all).
    eval_limit: int = 0
    #: A case row that fails validation: ``error`` stops (default), ``skip`` drops it and reports file, line,
    #: field and reason (``--on-bad-rows``).
    on_bad_rows: str = "error"


@dataclass
class PeftSettings:
    mode: Mode = Mode.QLORA
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    #: ``all-linear`` = every linear projection except the LM head, or module names (``q_proj,v_proj``).
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    #: Train exactly the manifest's new embedding rows (PEFT ``trainable_token_indices``).
    train_new_tokens: bool = True
    #: Rank-stabilised LoRA (scale alpha/sqrt(r)).
    use_rslora: bool = False
    #: Weight-decomposed LoRA.
    use_dora: bool = False
    #: Modules trained in full and saved with the adapter (e.g. ``lm_head``).
    modules_to_save: list[str] | None = None


@dataclass
class TrainConfig:
    #: Output folder (the adapter or model, its tokenizer, reports); checkpoints go to ``<out>/checkpoints``.
    out: str = "runs/finetune"
    epochs: float = 3.0
    #: > 0 overrides ``epochs``.
    max_steps: int = -1
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    lr_scheduler: str = "cosine"
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 1024
    batching: Batching = Batching.PACKING
    #: Evaluate (and checkpoint) every N optimizer steps.
    eval_steps: int = 50
    #: Stop after this many evaluations without a better eval loss (0 = never stop early).
    early_stopping_patience: int = 3
    save_total_limit: int = 2
    logging_steps: int = 10
    seed: int = 42
    gradient_checkpointing: bool = False
    #: Continue from the last checkpoint in ``<out>/checkpoints`` (same seed and data order as the killed run).
    resume: bool = False
    #: Use CPU even when CUDA is available.
    cpu: bool = False
    #: Measure eval loss once before training (metrics.json: eval_loss_before vs eval_loss_after).
    eval_before: bool = True
    #: Option accuracy before/after on eval cases with options + answer_key (log-likelihood of each option).
    option_eval: bool = False
    #: Optional continual pre-training on raw text before SFT (passages JSONL/txt); 0 steps = skip.
    cpt_corpus: str | None = None
    cpt_steps: int = 0
    cpt_learning_rate: float = 5e-5
    #: Every other ``trl.SFTConfig`` field set in this section (``report_to``, ``optim`` …), passed through as given;
    #: these win over the values clinrag derives (e.g. ``train.warmup_steps`` over ``warmup_ratio``).
    sft: dict[str, Any] = field(default_factory=dict)


@dataclass
class FinetuneConfig:
    preset: str = "default"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    peft: PeftSettings = field(default_factory=PeftSettings)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-able values: enums as their strings, ``train.sft`` flattened into ``train``."""
        out: dict[str, Any] = {"preset": self.preset}
        for name in SECTIONS:
            section = {k: (v.value if isinstance(v, Enum) else v) for k, v in asdict(getattr(self, name)).items()}
            section.update(section.pop("sft", {}))
            out[name] = section
        return out


SECTIONS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "peft": PeftSettings, "train": TrainConfig}

#: TRL's names for clinrag's shorter keys (``trl.ModelConfig`` / ``trl.SFTConfig`` field → clinrag key).
ALIASES: dict[str, str] = {
    "model.model_name_or_path": "model.name_or_path",
    "peft.lora_r": "peft.r",
    "peft.lora_alpha": "peft.alpha",
    "peft.lora_dropout": "peft.dropout",
    "peft.lora_target_modules": "peft.target_modules",
    "peft.lora_modules_to_save": "peft.modules_to_save",
    "train.output_dir": "train.out",
    "train.num_train_epochs": "train.epochs",
    "train.per_device_train_batch_size": "train.batch_size",
    "train.gradient_accumulation_steps": "train.grad_accum",
    "train.lr_scheduler_type": "train.lr_scheduler",
    "train.use_cpu": "train.cpu",
}

#: SFTConfig fields clinrag sets from another key (setting them in ``train`` would be ignored or conflict).
OWNED_SFT_FIELDS: dict[str, str] = {
    "trust_remote_code": "model.trust_remote_code",
    "model_init_kwargs": "the model section (clinrag loads the model itself)",
    "resume_from_checkpoint": "train.resume",
}

#: The common flags every fine-tuning entry point accepts, mapped to config keys.
FLAG_ALIASES: dict[str, str] = {
    "model": "model.name_or_path",
    "data": "data.train",
    "eval_data": "data.eval",
    "mode": "peft.mode",
    "max_steps": "train.max_steps",
    "epochs": "train.epochs",
    "out": "train.out",
    "vocab_manifest": "model.vocab_manifest",
    "index": "data.index",
    "resume": "train.resume",
}


def section_keys(section: str) -> list[str]:
    """clinrag's own keys of one section (``train.sft`` is the pass-through store, not a key)."""
    return [f.name for f in fields(SECTIONS[section]) if f.name != "sft"]


def valid_keys() -> list[str]:
    keys = ["preset"]
    for name in SECTIONS:
        keys += [f"{name}.{k}" for k in section_keys(name)]
    return keys
