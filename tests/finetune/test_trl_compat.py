"""The private TRL/PEFT/accelerate attributes clinrag.finetune.trl_compat relies on still exist (fails on upgrade)."""

from __future__ import annotations

import importlib
import inspect

import pytest
from clinrag.finetune import trl_compat


@pytest.fixture(scope="module")
def extended_dir(tmp_path_factory, tiny_qwen2_dir):
    """The tiny model with two new vocabulary rows (``clinrag vocab extend``'s function)."""
    from clinrag.finetune.vocab_extend import extend_vocabulary

    out = tmp_path_factory.mktemp("ext") / "model"
    manifest = extend_vocabulary(str(tiny_qwen2_dir), ["stemiwordx", "troponinzz"], out)
    return out, out / "added_tokens_manifest.json", list(manifest["added_ids"])


@pytest.mark.parametrize(("module", "name"), trl_compat.REQUIRED_IMPORTS)
def test_required_library_symbols_exist(module, name):
    assert hasattr(importlib.import_module(module), name), f"{module}.{name} is gone: update trl_compat"


def test_signatures_and_properties_relied_on():
    from accelerate.parallelism_config import ParallelismConfig
    from trl.kernels.chunked_logprob import _use_triton

    assert list(inspect.signature(_use_triton).parameters) == ["device"]
    assert isinstance(ParallelismConfig.sp_enabled, property) and isinstance(ParallelismConfig.cp_enabled, property)
    import torch

    assert trl_compat.use_triton(torch.device("cpu")) is False  # CPU never runs TRL's Triton kernel


@pytest.mark.slow
def test_sft_trainer_instance_attributes(tiny_qwen2_dir, tmp_path):
    """The instance attributes SFTTrainer.__init__ sets and trl_compat reads/writes, with the types it expects."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(str(tiny_qwen2_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_qwen2_dir))
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": "q?"}],
                             "completion": [{"role": "assistant", "content": "a"}]}] * 2)
    args = SFTConfig(output_dir=str(tmp_path), max_steps=1, report_to="none", use_cpu=True, save_strategy="no",
                     max_length=32, disable_tqdm=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    for name in trl_compat.TRAINER_ATTRIBUTES:
        assert hasattr(trainer, name), f"SFTTrainer no longer sets {name}: update trl_compat"
    assert set(trainer._metrics) == {"train", "eval"} and trainer._metrics["train"]["x"] == []  # defaultdict(list)
    assert isinstance(trainer._total_train_tokens, int) and trainer._tp_size == trl_compat.tp_size(trainer) == 1
    assert trl_compat.aux_loss_enabled(trainer) is False and trl_compat.sequence_parallel(trainer.accelerator) is False
    trl_compat.log_token_metrics(trainer, "train", count=4, entropy_sum=2.0, correct=3, train_tokens=10)
    assert trainer._metrics["train"]["mean_token_accuracy"] == [0.75] and trl_compat.total_train_tokens(trainer) == 10
    assert trainer._metrics["train"]["num_tokens"] == [10]


@pytest.mark.slow
def test_fused_head_crash_still_happens_without_patch(extended_dir, tmp_path):
    """TRL 1.16's fused LM head reads ``lm_head.bias``, which PEFT's TrainableTokensWrapper lacks.

    If this test fails, TRL or PEFT fixed it: remove ``patch_trainable_tokens_lm_head`` and this test.
    """
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    model_dir, _, ids = extended_dir
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": "stemiwordx?"}],
                             "completion": [{"role": "assistant", "content": "troponinzz"}]}] * 2)
    args = SFTConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2, report_to="none",
                     use_cpu=True, save_strategy="no", max_length=32, disable_tqdm=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok,
                         peft_config=LoraConfig(r=2, target_modules="all-linear",
                                                trainable_token_indices={"embed_tokens": ids}))
    with pytest.raises(AttributeError, match="bias"):
        trainer.train()
    assert trl_compat.patch_trainable_tokens_lm_head(trainer.model) is True  # the workaround applies…
    trainer.train()  # …and then the same trainer trains




def test_bitsandbytes_still_has_the_cpu_repacking_switch_it_turns_off():
    """keep_4bit_weights_trainable relies on Linear4bit.support_avx512bf16_for_cpu gating the eval-time repacking."""
    import inspect

    import bitsandbytes as bnb

    assert "support_avx512bf16_for_cpu" in inspect.getsource(bnb.nn.Linear4bit.forward)
    layer = bnb.nn.Linear4bit(8, 8, bias=True, compute_dtype=None)
    from clinrag.finetune.trl_compat import keep_4bit_weights_trainable

    class Holder(__import__("torch").nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

    holder = Holder()
    layer.support_avx512bf16_for_cpu = True
    assert keep_4bit_weights_trainable(holder) == 1 and layer.support_avx512bf16_for_cpu is False
