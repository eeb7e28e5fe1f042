"""Fine-tuning configuration: one :class:`FinetuneConfig` from a preset, a YAML file and ``--key value`` overrides.

Precedence, lowest first — each layer changes only the keys it names:

    dataclass defaults (finetune/config_schema.py)  <  preset  <  YAML file  <  command line

The preset is named by ``preset:`` in the YAML file or ``--preset`` (``finetune/presets/<name>.yaml``); the
``default`` preset is empty, so the dataclass defaults are the defaults. Every key is checked before anything heavy
loads: an unknown key or a bad value is a one-line :class:`ConfigError` naming the key (and the valid values of a
choice). Values are typed by transformers' ``HfArgumentParser`` (:mod:`clinrag.finetune.config_values`). The
resolved config is saved as ``config.resolved.yaml`` beside every output.

Keys are ``section.key`` (``--train.learning_rate 1e-4``) or, when unambiguous, just ``key`` (``--learning_rate``);
dashes and underscores are interchangeable. Besides clinrag's keys (:mod:`clinrag.finetune.config_schema`) the
``train`` section takes every ``trl.SFTConfig`` field (``--train.report_to tensorboard``), and TRL's names of
clinrag's shorter keys (``--train.num_train_epochs`` = ``--train.epochs``). The common flags map to keys:

    --model  model.name_or_path        --data      data.train        --eval-data  data.eval
    --mode   peft.mode                 --max-steps train.max_steps   --epochs     train.epochs
    --out    train.out                 --vocab-manifest model.vocab_manifest      --index data.index

:mod:`clinrag.finetune.trl_args` turns the config into TRL/PEFT/bitsandbytes objects.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml
from clinrag.core.io import read_text

from .config_schema import (  # noqa: F401 - re-exported: the config's public names live here
    ALIASES,
    FLAG_ALIASES,
    OWNED_SFT_FIELDS,
    SECTIONS,
    Batching,
    ComputeDtype,
    ConfigError,
    DataConfig,
    DataError,
    DataFormat,
    Dtype,
    FinetuneConfig,
    Mode,
    ModelConfig,
    PeftSettings,
    QuantType,
    TrainConfig,
    section_keys,
    valid_keys,
)
from .config_values import coerce_key, sft_field_names, suggest

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
SFT_DOCS = "https://huggingface.co/docs/trl/sft_trainer#trl.SFTConfig"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _sft_key(section: str, name: str) -> str | None:
    """``train.<name>`` when ``name`` is an SFTConfig field clinrag passes through; raises for fields it owns."""
    if section != "train":
        return None
    if name in OWNED_SFT_FIELDS:
        raise ConfigError(f"train.{name} is set by clinrag from {OWNED_SFT_FIELDS[name]}")
    return f"train.{name}" if name in sft_field_names() else None


def _canonical(section: str, name: str, origin: str) -> str:
    """The full key for ``name`` in ``section`` (TRL aliases resolved), or a ConfigError listing the section's keys."""
    full = f"{section}.{name}"
    full = ALIASES.get(full, full)
    if full.partition(".")[2] in section_keys(section):
        return full
    sft = _sft_key(section, name)
    if sft:
        return sft
    names = section_keys(section)
    more = f"; or any SFTConfig field, see {SFT_DOCS}" if section == "train" else ""
    candidates = names + sorted(sft_field_names()) if section == "train" else names
    raise ConfigError(f"{origin}: unknown key {f'{section}.{name}'!r}{suggest(name, candidates)} "
                      f"(valid in {section}: {', '.join(names)}{more})")


def resolve_key(raw: str) -> str:
    """Map ``train.learning-rate`` / ``learning_rate`` / ``eval-data`` / ``report_to`` to a full key, or raise."""
    key = raw.strip().lstrip("-").replace("-", "_")
    if key == "preset":
        return key
    section, dot, name = key.partition(".")
    if dot and section in SECTIONS:
        return _canonical(section, name, "config")
    if key in FLAG_ALIASES:
        return FLAG_ALIASES[key]
    valid = valid_keys()
    matches = [k for k in valid if k.split(".")[-1] == key]
    matches += [v for a, v in ALIASES.items() if a.split(".")[-1] == key and v not in matches]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConfigError(f"config key {raw!r} is ambiguous ({', '.join(matches)}): use section.key")
    if key not in OWNED_SFT_FIELDS and key in sft_field_names():
        return f"train.{key}"
    flags = ", ".join("--" + a.replace("_", "-") for a in FLAG_ALIASES)
    raise ConfigError(f"unknown config key {raw!r}{suggest(key, [k.split('.')[-1] for k in valid])} "
                      f"(valid: {', '.join(valid)}; any SFTConfig field as train.<field>; flags: {flags})")


def _flatten(data: Any, origin: str) -> dict[str, Any]:
    """A sectioned mapping (YAML) → ``{"section.key": value}``, every key checked."""
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
                out[_canonical(top, str(k).replace("-", "_"), origin)] = v
        else:
            raise ConfigError(f"{origin}: unknown section {top!r} (valid: preset, {', '.join(SECTIONS)})")
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        return yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None


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


def _apply(cfg: FinetuneConfig, key: str, value: Any) -> None:
    if key == "preset":
        cfg.preset = str(value)
        return
    section, _, name = key.partition(".")
    typed = coerce_key(key, value)
    if name in section_keys(section):
        setattr(getattr(cfg, section), name, typed)
    else:
        cfg.train.sft[name] = typed


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> FinetuneConfig:
    """Dataclass defaults → preset → YAML file → overrides, every key checked; then :func:`validate`."""
    user = _flatten(_read_yaml(Path(path)), str(path)) if path else {}
    over = {resolve_key(k): v for k, v in (overrides or {}).items()}
    preset = str(over.get("preset", user.get("preset", "default")))
    if preset not in preset_names():
        raise ConfigError(f"unknown preset {preset!r} (valid: {', '.join(preset_names())})")
    cfg = FinetuneConfig()
    preset_layer = _flatten(_read_yaml(PRESETS_DIR / f"{preset}.yaml"), f"preset {preset}")
    for layer in (preset_layer, user, over):
        for key, value in layer.items():
            _apply(cfg, key, value)
    cfg.preset = preset
    validate(cfg)
    return cfg


def validate(cfg: FinetuneConfig) -> None:
    """Check values (ranges, required paths) so a bad config fails before any model loads."""
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
    if not cfg.peft.target_modules:
        raise ConfigError("peft.target_modules: give all-linear or module names")
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
        _apply(cfg, key, value)
    return cfg


def replace(cfg: FinetuneConfig, **sections: dict[str, Any]) -> FinetuneConfig:
    """A copy of ``cfg`` with some section fields changed: ``replace(cfg, train={"max_steps": 4})``."""
    out = dataclasses.replace(cfg)
    for name, changes in sections.items():
        setattr(out, name, dataclasses.replace(getattr(cfg, name), **changes))
    return out
