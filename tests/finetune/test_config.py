"""Config: presets, YAML + overrides, every unknown key or bad value a clear error, library objects from pure helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from clinrag.finetune.config import (
    ConfigError,
    FinetuneConfig,
    config_from_dict,
    dump_yaml,
    load_config,
    parse_overrides,
    preset_names,
    resolve_key,
    valid_keys,
)
from clinrag.finetune.trl_args import to_bnb_config, to_peft_config, to_sft_config

REPO = Path(__file__).resolve().parents[2]

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


def test_default_preset_is_the_dataclass_defaults():
    """Editing a dataclass default takes effect: the default preset is empty and no preset restates a default."""
    import yaml
    from clinrag.finetune.config import PRESETS_DIR

    cfg = load_config(None, BASE)
    defaults = FinetuneConfig()
    assert (cfg.model.dtype, cfg.peft, cfg.train) == (defaults.model.dtype, defaults.peft, defaults.train)
    assert not yaml.safe_load((PRESETS_DIR / "default.yaml").read_text())
    for name in preset_names():
        for section, values in (yaml.safe_load((PRESETS_DIR / f"{name}.yaml").read_text()) or {}).items():
            for key, value in values.items():
                assert getattr(getattr(defaults, section), key) != value, f"{name}: {section}.{key} restates a default"


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
    # An untied LM head (the caller reads tie_word_embeddings from the model config) trains the same new rows.
    assert to_peft_config(cfg, [151666, 151665], untied_head="lm_head").trainable_token_indices == {
        "embed_tokens": [151665, 151666], "lm_head": [151665, 151666]}
    assert to_peft_config(cfg, [], untied_head="lm_head").trainable_token_indices is None
    frozen = load_config(None, {**BASE, "mode": "qlora", "peft.train_new_tokens": "false"})
    assert to_peft_config(frozen, [151665], untied_head="lm_head").trainable_token_indices is None
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


def test_every_sft_config_field_is_reachable(tmp_path):
    """Any SFTConfig field by its own name under train (YAML or command line); TRL's names of clinrag's keys."""
    cfg_file = write(tmp_path, "model:\n  name_or_path: m\ndata:\n  train: t.jsonl\n"
                               "train:\n  report_to: [tensorboard]\n  adam_beta2: 0.98\n  num_train_epochs: 2\n")
    cfg = load_config(cfg_file, parse_overrides(["--train.report_to", "tensorboard", "--optim", "adamw_torch_fused",
                                                 "--lora_r", "8", "--train.neftune_noise_alpha=5"]))
    assert cfg.train.sft == {"report_to": "tensorboard", "adam_beta2": 0.98, "optim": "adamw_torch_fused",
                             "neftune_noise_alpha": 5.0}
    assert cfg.train.epochs == 2.0 and cfg.peft.r == 8
    args = to_sft_config(cfg, tmp_path, has_eval=False, cuda=False)
    assert args.report_to == ["tensorboard"] and args.optim == "adamw_torch_fused" and args.adam_beta2 == 0.98
    assert args.num_train_epochs == 2.0
    assert load_config(None, BASE).train.sft == {} and to_sft_config(load_config(None, BASE), tmp_path, has_eval=False,
                                                                      cuda=False).report_to == []  # default: none
    # the resolved config round-trips, pass-through fields included
    assert config_from_dict(yaml_load(dump_yaml(cfg))) == cfg


def yaml_load(text: str):
    import yaml

    return yaml.safe_load(text)


def test_sft_config_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"train.optim: 'adamw_bad' is not valid \(valid: adamw_torch, "):
        load_config(None, {**BASE, "train.optim": "adamw_bad"})
    with pytest.raises(ConfigError, match=r"train.adam_beta2: 'high' is not a valid float"):
        load_config(None, {**BASE, "adam_beta2": "high"})
    with pytest.raises(ConfigError, match="train.trust_remote_code is set by clinrag from model.trust_remote_code"):
        load_config(None, {**BASE, "train.trust_remote_code": "true"})
    with pytest.raises(ConfigError, match=r"unknown key 'train.report_too' \(did you mean .*report_to.*SFTConfig"):
        load_config(write(tmp_path, "train:\n  report_too: none\n"), BASE)
    cfg = load_config(None, {**BASE, "mode": "lora", "train.save_strategy": "epoch"})  # best-checkpoint needs steps
    with pytest.raises(ConfigError, match="train section: invalid SFTConfig"):
        to_sft_config(cfg, tmp_path, has_eval=True, cuda=False)


def test_qlora_compute_dtype_and_quantisation_are_configurable():
    d = to_bnb_config(load_config(None, BASE))
    assert str(d.bnb_4bit_compute_dtype) == "torch.bfloat16" and d.bnb_4bit_use_double_quant
    cfg = load_config(None, {**BASE, "model.bnb_4bit_compute_dtype": "float32", "model.use_bnb_nested_quant": "false",
                             "model.bnb_4bit_quant_type": "fp4"})
    bnb = to_bnb_config(cfg)
    assert str(bnb.bnb_4bit_compute_dtype) == "torch.float32" and not bnb.bnb_4bit_use_double_quant
    assert bnb.bnb_4bit_quant_type == "fp4"
    with pytest.raises(ConfigError, match=r"model.bnb_4bit_compute_dtype: 'int8' is not valid \(valid: bfloat16, "):
        load_config(None, {**BASE, "model.bnb_4bit_compute_dtype": "int8"})


def test_example_configs_load():
    files = sorted((REPO / "examples" / "finetune").glob("*.yaml"))
    assert len(files) >= 3
    for f in files:
        cfg = load_config(f)
        assert cfg.model.name_or_path and cfg.data.train and cfg.train.out


def test_resume_takes_an_optional_true_or_false(tmp_path):
    """`clinrag finetune --resume`, `--resume true` and `--resume false` (which turns off a YAML `resume: true`)."""
    cfg_file = write(tmp_path, "model:\n  name_or_path: m\ndata:\n  train: t.jsonl\ntrain:\n  resume: true\n")
    assert load_config(cfg_file, parse_overrides(["--resume", "false", "--epochs", "2"])).train.resume is False
    assert load_config(cfg_file, parse_overrides(["--epochs", "2", "--resume", "true"])).train.resume is True
    assert load_config(cfg_file, parse_overrides(["--resume"])).train.resume is True
