"""Config: presets, YAML + overrides, every unknown key or bad value a clear error, library objects from pure helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from clinrag.finetune.config import (
    ConfigError,
    load_config,
    parse_overrides,
    preset_names,
    resolve_key,
    to_bnb_config,
    to_peft_config,
    to_sft_config,
    valid_keys,
)

BASE = {"model": "some/model", "data": "cases.jsonl"}


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return p


def test_presets_ship_and_load():
    assert {"default", "small-data"} <= set(preset_names())
    d = load_config(None, {**BASE})
    s = load_config(None, {**BASE, "preset": "small-data"})
    assert d.peft.mode == "qlora" and d.preset == "default"
    # small-data follows the seeds: 5-10 epochs, LoRA lr 1e-4..2e-4, weight decay 0.01, dropout 0.1, warm-up
    assert 5 <= s.train.epochs <= 10 and 1e-4 <= s.train.learning_rate <= 2e-4
    assert s.train.weight_decay == 0.01 and s.peft.dropout == 0.1 and s.train.warmup_ratio > 0


def test_yaml_then_overrides_win(tmp_path):
    cfg_file = write(tmp_path, "preset: small-data\nmodel:\n  name_or_path: m\ndata:\n  train: t.jsonl\n"
                               "train:\n  epochs: 6\n  learning_rate: 1.5e-4\n")
    cfg = load_config(cfg_file, parse_overrides(["--epochs", "7", "--train.batch-size=3", "--mode", "lora",
                                                 "--resume", "--peft.target_modules", "q_proj,v_proj"]))
    assert cfg.train.epochs == 7.0 and cfg.train.batch_size == 3 and cfg.peft.mode == "lora"
    assert cfg.train.learning_rate == 1.5e-4 and cfg.train.resume is True
    assert cfg.peft.target_modules == ["q_proj", "v_proj"]
    assert cfg.train.weight_decay == 0.01  # from the preset


def test_common_flags_map_to_keys():
    for flag, key in [("--model", "model.name_or_path"), ("--data", "data.train"), ("--eval-data", "data.eval"),
                      ("--mode", "peft.mode"), ("--max-steps", "train.max_steps"), ("--epochs", "train.epochs"),
                      ("--out", "train.out"), ("--vocab-manifest", "model.vocab_manifest"), ("--index", "data.index")]:
        assert resolve_key(flag) == key


def test_unknown_key_lists_valid_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key '--learning-rat'.*train\.learning_rate"):
        parse_overrides(["--learning-rat", "1e-4"])
    with pytest.raises(ConfigError, match=r"unknown key 'train\.lr'.*valid in train:.*learning_rate"):
        load_config(write(tmp_path, "train:\n  lr: 0.1\n"), BASE)
    with pytest.raises(ConfigError, match="unknown section 'trainer'"):
        load_config(write(tmp_path, "trainer:\n  epochs: 1\n"), BASE)
    with pytest.raises(ConfigError, match="unknown preset 'tiny'.*small-data"):
        load_config(None, {**BASE, "preset": "tiny"})
    assert "train.learning_rate" in valid_keys()


def test_bad_values_are_clear():
    with pytest.raises(ConfigError, match=r"peft.mode: 'qlora4' is not valid \(valid: qlora, lora, full\)"):
        load_config(None, {**BASE, "mode": "qlora4"})
    with pytest.raises(ConfigError, match="train.max_steps: 'ten' is not a valid int"):
        load_config(None, {**BASE, "max_steps": "ten"})
    with pytest.raises(ConfigError, match="model.name_or_path is required"):
        load_config(None, {"data": "x.jsonl"})
    with pytest.raises(ConfigError, match="data.format"):
        load_config(None, {**BASE, "data.format": "chat"})
    with pytest.raises(ConfigError, match="expected --key value"):
        parse_overrides(["epochs", "3"])
    assert resolve_key("eval") == "data.eval" and resolve_key("train.eval-steps") == "train.eval_steps"


def test_peft_bnb_sft_helpers(tmp_path):
    cfg = load_config(None, {**BASE, "mode": "qlora", "peft.r": "8"})
    lc = to_peft_config(cfg, [151666, 151665])
    assert lc.r == 8 and lc.target_modules in ("all-linear", {"all-linear"})
    assert lc.trainable_token_indices == {"embed_tokens": [151665, 151666]}
    assert to_peft_config(cfg, []).trainable_token_indices is None
    bnb = to_bnb_config(cfg)
    assert bnb.load_in_4bit and bnb.bnb_4bit_quant_type == "nf4" and bnb.bnb_4bit_use_double_quant
    assert str(bnb.bnb_4bit_compute_dtype) == "torch.bfloat16"
    lora = load_config(None, {**BASE, "mode": "lora"})
    assert to_bnb_config(lora) is None
    assert to_peft_config(load_config(None, {**BASE, "mode": "full"})) is None
    args = to_sft_config(lora, tmp_path, has_eval=True, cuda=False)
    assert args.completion_only_loss is True and args.load_best_model_at_end and args.metric_for_best_model == "eval_loss"
    assert args.packing and args.eval_steps == lora.train.eval_steps == args.save_steps
    grouped = load_config(None, {**BASE, "train.batching": "length_grouped"})
    assert to_sft_config(grouped, tmp_path, has_eval=False, cuda=False).train_sampling_strategy == "group_by_length"
