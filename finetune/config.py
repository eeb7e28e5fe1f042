"""Fine-tuning configuration: dataclasses split by concern, YAML presets, ``--key value`` overrides.

A run is described by one :class:`FinetuneConfig` (model, data, peft, train sections). It is built from, in order:
the preset named by ``preset:`` (``finetune/presets/<name>.yaml``, default ``default``), the user's YAML file, then
command-line overrides. Every key is checked: an unknown key is a :class:`ConfigError` listing the valid ones,
before anything heavy is loaded. The resolved config is saved as ``config.resolved.yaml`` beside every output.

Overrides name a key as ``section.key`` (``--train.learning_rate 1e-4``) or, when unambiguous, just ``key``
(``--learning_rate 1e-4``); dashes and underscores are interchangeable. The common flags map to keys:

    --model  model.name_or_path        --data      data.train        --eval-data  data.eval
    --mode   peft.mode                 --max-steps train.max_steps   --epochs     train.epochs
    --out    train.out                 --vocab-manifest model.vocab_manifest      --index data.index

Pure helpers turn the config into library objects: :func:`to_peft_config`, :func:`to_bnb_config`,
:func:`to_sft_config` (imports happen inside them, so reading a config never imports torch).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, get_type_hints

import yaml
from clinrag.core.errors import ClinragError

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


class ConfigError(ClinragError, ValueError):
    """A fine-tuning config key or value is invalid (names the key and lists valid ones)."""


class DataError(ClinragError, ValueError):
    """Training data cannot be turned into examples (no completions, empty split, …)."""


class Mode(str, Enum):
    """How the model's weights are trained."""

    QLORA = "qlora"  # base in 4-bit NF4 (double quant, bf16 compute) + LoRA adapters
    LORA = "lora"  # base in full/half precision + LoRA adapters
    FULL = "full"  # every weight


class DataFormat(str, Enum):
    """Which calls of the graph the examples train."""

    PER_QUESTION = "per_question"  # one example per question (+ passages) and one per case summary: what the graph asks
    WHOLE_CASE = "whole_case"  # all questions in, "Summary: … Answers: 1. …" out (the single-pass mode)


class Batching(str, Enum):
    """How examples become batches."""

    PACKING = "packing"  # best-fit-decreasing packing, padding-free (position_ids reset per example)
    LENGTH_GROUPED = "length_grouped"  # padded per batch to its longest row, rows of similar length grouped
    PADDED = "padded"  # padded per batch to its longest row, random order


def _enum_value(enum: type[Enum], value: Any, key: str) -> Enum:
    try:
        return enum(value)
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not valid (valid: {', '.join(e.value for e in enum)})") from None


@dataclass
class ModelConfig:
    #: Hub id or local folder of the base model (a ``clinrag vocab extend`` output folder for an extended vocabulary).
    name_or_path: str = ""
    #: Tokenizer folder if not the model's own (must cover every id of the vocabulary manifest).
    tokenizer: str | None = None
    #: ``added_tokens_manifest.json`` from ``clinrag vocab extend``: its ``added_ids`` become trainable rows.
    vocab_manifest: str | None = None
    #: Weights dtype for lora/full: ``auto`` = bf16 on CUDA, fp32 on CPU.
    dtype: str = "auto"
    #: Attention kernel (``sdpa``, ``eager``, ``flash_attention_2`` …).
    attn_implementation: str = "sdpa"
    trust_remote_code: bool = False


@dataclass
class DataConfig:
    #: Case file (JSONL/JSON/CSV in the case schema) to train on.
    train: str = ""
    #: Explicit eval case file; without it ``eval_fraction`` of the training cases are held out (by case).
    eval: str | None = None
    eval_fraction: float = 0.1
    format: str = DataFormat.PER_QUESTION.value
    #: Index folder (``clinrag index build``) for RAFT-style passages; without it examples carry no passages.
    index: str | None = None
    #: Distractor passages retrieved per question (besides the gold evidence).
    distractors: int = 3
    #: Passages in the prompt when the case has no gold evidence for the question.
    k: int = 4
    #: Also train the per-case summary call (when a case has a ``summary``).
    summaries: bool = True
    #: Use only the first N training cases (0 = all): quick experiments.
    limit: int = 0
    #: Use only the first N eval cases (0 = all).
    eval_limit: int = 0


@dataclass
class PeftSettings:
    mode: str = Mode.QLORA.value
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    #: ``all-linear`` = every linear projection except the LM head, or a list of module names.
    target_modules: Any = "all-linear"
    #: Train exactly the manifest's new embedding rows (PEFT ``trainable_token_indices``).
    train_new_tokens: bool = True


@dataclass
class TrainConfig:
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
    batching: str = Batching.PACKING.value
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


@dataclass
class FinetuneConfig:
    preset: str = "default"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    peft: PeftSettings = field(default_factory=PeftSettings)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SECTIONS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "peft": PeftSettings, "train": TrainConfig}

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


def valid_keys() -> list[str]:
    keys = ["preset"]
    for name, cls in SECTIONS.items():
        keys += [f"{name}.{f.name}" for f in fields(cls)]
    return keys


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Coerce a YAML/CLI value to the field's type (CLI values arrive as strings)."""
    text = getattr(hint, "__name__", None) if isinstance(hint, type) else str(hint).replace("typing.", "")
    if value is None:
        if "None" in text or hint is Any:
            return None
        raise ConfigError(f"{key}: must not be null")
    if hint is Any:
        if isinstance(value, str) and "," in value:
            return [v.strip() for v in value.split(",") if v.strip()]
        return value
    try:
        if hint is bool or text.startswith("bool"):
            if isinstance(value, bool):
                return value
            low = str(value).strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if hint is int or text.startswith("int"):
            if isinstance(value, bool):
                raise ValueError
            f = float(value)
            if f != int(f):
                raise ValueError
            return int(f)
        if hint is float or text.startswith("float"):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(value, str) and value.lower() in ("none", "null", "~") and "None" in text:
            return None
        if isinstance(value, (dict, list)):
            raise ValueError
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: {value!r} is not a valid {text}") from None


def _apply(cfg: FinetuneConfig, key: str, value: Any, origin: str) -> None:
    if key == "preset":
        cfg.preset = str(value)
        return
    section, _, name = key.partition(".")
    obj = getattr(cfg, section)
    hints = get_type_hints(type(obj))
    setattr(obj, name, _coerce(value, hints[name], key))


def resolve_key(raw: str) -> str:
    """Map ``train.learning-rate`` / ``learning_rate`` / ``eval-data`` to a full key, or raise listing valid keys."""
    key = raw.strip().lstrip("-").replace("-", "_")
    valid = valid_keys()
    if key in valid:
        return key
    if key in FLAG_ALIASES:
        return FLAG_ALIASES[key]
    matches = [k for k in valid if k.split(".")[-1] == key]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConfigError(f"config key {raw!r} is ambiguous ({', '.join(matches)}): use section.key")
    raise ConfigError(f"unknown config key {raw!r} (valid: {', '.join(valid)}; "
                      f"flags: {', '.join('--' + a.replace('_', '-') for a in FLAG_ALIASES)})")


def _flatten(data: dict[str, Any], origin: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of sections, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for top, value in data.items():
        if top == "preset":
            out["preset"] = value
        elif top in SECTIONS:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: section {top!r} must be a mapping")
            for k, v in value.items():
                full = f"{top}.{k}"
                if full not in valid_keys():
                    names = ", ".join(f.name for f in fields(SECTIONS[top]))
                    raise ConfigError(f"{origin}: unknown key {full!r} (valid in {top}: {names})")
                out[full] = v
        else:
            raise ConfigError(f"{origin}: unknown section {top!r} (valid: preset, {', '.join(SECTIONS)})")
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    return data


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """``["--epochs", "5", "--train.lr_scheduler=linear", "--resume"]`` → ``{"train.epochs": "5", …}``."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        tok = args[i]
        if not tok.startswith("--"):
            raise ConfigError(f"expected --key value, got {tok!r}")
        if "=" in tok:
            name, value = tok.split("=", 1)
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            name, value = tok, args[i + 1]
            i += 2
        else:  # a bare flag is a boolean switch
            name, value = tok, "true"
            i += 1
        out[resolve_key(name)] = value
    return out


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> FinetuneConfig:
    """Preset → YAML file → overrides, every key checked; then :func:`validate`."""
    user = _flatten(_read_yaml(Path(path)), str(path)) if path else {}
    over = {resolve_key(k): v for k, v in (overrides or {}).items()}
    preset = str(over.get("preset", user.get("preset", "default")))
    if preset not in preset_names():
        raise ConfigError(f"unknown preset {preset!r} (valid: {', '.join(preset_names())})")
    cfg = FinetuneConfig()
    for origin, layer in ((f"preset {preset}", _flatten(_read_yaml(PRESETS_DIR / f"{preset}.yaml"), preset)),
                          (str(path), user), ("overrides", over)):
        for key, value in layer.items():
            _apply(cfg, key, value, origin)
    cfg.preset = preset
    validate(cfg)
    return cfg


def validate(cfg: FinetuneConfig) -> None:
    """Check values (enums, ranges, required paths) so a bad config fails before any model loads."""
    _enum_value(Mode, cfg.peft.mode, "peft.mode")
    _enum_value(DataFormat, cfg.data.format, "data.format")
    _enum_value(Batching, cfg.train.batching, "train.batching")
    if not cfg.model.name_or_path:
        raise ConfigError("model.name_or_path is required (--model ID|DIR)")
    if not cfg.data.train:
        raise ConfigError("data.train is required (--data FILE)")
    if not 0.0 <= cfg.data.eval_fraction < 1.0:
        raise ConfigError(f"data.eval_fraction: {cfg.data.eval_fraction} must be in [0, 1)")
    for key, value in (("peft.r", cfg.peft.r), ("peft.alpha", cfg.peft.alpha), ("train.batch_size", cfg.train.batch_size),
                       ("train.grad_accum", cfg.train.grad_accum), ("train.max_length", cfg.train.max_length),
                       ("train.eval_steps", cfg.train.eval_steps)):
        if value <= 0:
            raise ConfigError(f"{key}: {value} must be positive")
    if not 0.0 <= cfg.peft.dropout < 1.0:
        raise ConfigError(f"peft.dropout: {cfg.peft.dropout} must be in [0, 1)")
    if cfg.train.learning_rate <= 0:
        raise ConfigError(f"train.learning_rate: {cfg.train.learning_rate} must be positive")
    if cfg.train.max_steps <= 0 and cfg.train.epochs <= 0:
        raise ConfigError("set train.epochs > 0 or train.max_steps > 0")


def dump_yaml(cfg: FinetuneConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def config_from_dict(data: dict[str, Any]) -> FinetuneConfig:
    """Rebuild a config from :meth:`FinetuneConfig.to_dict` (e.g. a saved ``config.resolved.yaml``)."""
    cfg = FinetuneConfig()
    for key, value in _flatten(data, "config").items():
        _apply(cfg, key, value, "config")
    return cfg


# -- conversion helpers (pure: config in, library object out) ---------------------------------------------------------

def to_peft_config(cfg: FinetuneConfig, new_token_ids: list[int] | None = None) -> Any:
    """The PEFT ``LoraConfig`` (None in full mode): LoRA on every linear projection by default; the new vocabulary
    rows (and, for tied embeddings, the LM-head rows that share them) trained exactly via ``trainable_token_indices``."""
    if cfg.peft.mode == Mode.FULL.value:
        return None
    from peft import LoraConfig

    extra: dict[str, Any] = {}
    if new_token_ids and cfg.peft.train_new_tokens:
        extra["trainable_token_indices"] = {"embed_tokens": sorted(int(i) for i in new_token_ids)}
    return LoraConfig(r=cfg.peft.r, lora_alpha=cfg.peft.alpha, lora_dropout=cfg.peft.dropout,
                      target_modules=cfg.peft.target_modules, bias="none", task_type="CAUSAL_LM", **extra)


def compute_dtype(cfg: FinetuneConfig, cuda: bool) -> Any:
    import torch

    if cfg.model.dtype == "auto":
        return torch.bfloat16 if cuda else torch.float32
    try:
        return getattr(torch, cfg.model.dtype)
    except AttributeError:
        raise ConfigError(f"model.dtype: {cfg.model.dtype!r} is not a torch dtype (e.g. auto, float32, bfloat16)") from None


def to_bnb_config(cfg: FinetuneConfig) -> Any:
    """4-bit NF4 with double quantisation and bf16 compute (qlora only; None otherwise)."""
    if cfg.peft.mode != Mode.QLORA.value:
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


def to_sft_config(cfg: FinetuneConfig, output_dir: str | Path, *, has_eval: bool, cuda: bool) -> Any:
    """TRL ``SFTConfig``: completion-only loss, eval/save every ``eval_steps``, best checkpoint by eval loss."""
    from trl import SFTConfig

    t = cfg.train
    batching = Batching(t.batching)
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
        packing=batching is Batching.PACKING,
        packing_strategy="bfd",
        train_sampling_strategy="group_by_length" if batching is Batching.LENGTH_GROUPED else "random",
        logging_steps=t.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=t.eval_steps,
        save_total_limit=t.save_total_limit,
        seed=t.seed,
        data_seed=t.seed,
        report_to="none",
        gradient_checkpointing=t.gradient_checkpointing,
        use_cpu=t.cpu or not cuda,
        bf16=cuda and not t.cpu,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    if has_eval:
        kwargs.update(eval_strategy="steps", eval_steps=t.eval_steps, load_best_model_at_end=True,
                      metric_for_best_model="eval_loss", greater_is_better=False)
    else:
        kwargs.update(eval_strategy="no")
    return SFTConfig(**kwargs)


def replace(cfg: FinetuneConfig, **sections: dict[str, Any]) -> FinetuneConfig:
    """A copy of ``cfg`` with some section fields changed: ``replace(cfg, train={"max_steps": 4})``."""
    out = dataclasses.replace(cfg)
    for name, changes in sections.items():
        setattr(out, name, dataclasses.replace(getattr(cfg, name), **changes))
    return out
