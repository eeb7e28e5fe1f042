"""Export: base resized like training, adapter (LoRA + trainable token rows) loaded and merged; the merged folder
gives the same logits as base + adapter; a tokenizer that does not extend the base's is refused before loading; the
exported config and tokenizer read the same in transformers 4.57 (a throwaway venv, no torch) as in 5.x."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from clinrag.core.errors import ClinragError, ModelLoadError
from clinrag.finetune.export import (
    export_merged,
    load_adapter_model,
    portable_config,
    portable_tokenizer_config,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory, tiny_qwen2_dir) -> tuple[Path, list[int]]:
    """A real PEFT adapter folder in the format `clinrag finetune` writes, with non-zero (random) weights so the
    merge has something to prove: LoRA B matrices and the new-token rows are randomised."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_qwen2_dir))
    tok.add_tokens(["stemiwordx", "troponinzz"])
    ids = tok.convert_tokens_to_ids(["stemiwordx", "troponinzz"])
    model = AutoModelForCausalLM.from_pretrained(str(tiny_qwen2_dir))
    peft_model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules="all-linear",
                                                  trainable_token_indices={"embed_tokens": ids}))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name or "trainable_tokens_delta" in name:
                p.copy_(torch.randn_like(p) * 0.05)
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    peft_model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    (out / "added_tokens_manifest.json").write_text(json.dumps({"added_ids": ids}))
    return out, ids


def test_merged_logits_equal_adapter_logits(adapter_dir, tiny_qwen2_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter, ids = adapter_dir
    out = export_merged(str(tiny_qwen2_dir), adapter, tmp_path / "merged")
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    assert (out / "added_tokens_manifest.json").exists() and not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(str(out)).eval()  # plain transformers, no PEFT
    peft_model, tok = load_adapter_model(str(tiny_qwen2_dir), adapter)
    assert len(AutoTokenizer.from_pretrained(str(out))) == len(tok)
    x = torch.tensor([tok("stemiwordx then troponinzz rises")["input_ids"] + ids])
    with torch.no_grad():
        want = peft_model(input_ids=x).logits
        got = merged(input_ids=x).logits
        base = AutoModelForCausalLM.from_pretrained(str(tiny_qwen2_dir))(input_ids=x).logits
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(base, want, atol=1e-3)  # the adapter really changes the model


def test_adapter_whose_tokenizer_does_not_match_the_base(adapter_dir, tiny_qwen2_dir, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    adapter, _ = adapter_dir
    foreign = tmp_path / "foreign"
    shutil.copytree(adapter, foreign)
    for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (foreign / f).unlink(missing_ok=True)
    backend = Tokenizer(models.WordLevel({"<unk>": 0, "hello": 1}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>").save_pretrained(str(foreign))
    with pytest.raises(ModelLoadError, match="does not match the base model's tokenizer"):
        export_merged(str(tiny_qwen2_dir), foreign, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_not_an_adapter_folder(tiny_qwen2_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="not an adapter folder.*full model"):
        export_merged(str(tiny_qwen2_dir), tiny_qwen2_dir, tmp_path / "x")


# A transformers 4.x environment without torch, built once per machine (CI on the same machine reuses it).
TRANSFORMERS4 = Path(os.environ.get("CLINRAG_TRANSFORMERS4_VENV",
                                    Path.home() / ".cache" / "clinrag" / "venvs" / "transformers-4.57"))
READ_WITH_TRANSFORMERS4 = """
import json, sys
from transformers import AutoConfig, AutoTokenizer, GenerationConfig, __version__
folder, texts = sys.argv[1], json.loads(sys.argv[2])
config, tok = AutoConfig.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
GenerationConfig.from_pretrained(folder)
print(json.dumps({"version": __version__, "model_type": config.model_type, "rope_theta": config.rope_theta,
                  "rope_scaling": config.rope_scaling, "dtype": str(config.dtype), "length": len(tok),
                  "eos": tok.eos_token, "pad": tok.pad_token, "ids": [tok(t)["input_ids"] for t in texts],
                  "text": [tok.decode(tok(t)["input_ids"]) for t in texts], "template": bool(tok.chat_template)}))
"""


@pytest.fixture(scope="session")
def transformers4_python() -> Path:
    python, ready = TRANSFORMERS4 / "bin" / "python", TRANSFORMERS4 / ".clinrag-ready"
    if not ready.exists():
        shutil.rmtree(TRANSFORMERS4, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(TRANSFORMERS4)], check=True)
        pip = subprocess.run([str(python), "-m", "pip", "install", "-q", "transformers==4.57.*", "tokenizers"],
                             capture_output=True, text=True, check=False)
        if pip.returncode:
            pytest.skip(f"cannot install transformers 4.57 into {TRANSFORMERS4}: {pip.stderr.strip()[-300:]}")
        ready.write_text("transformers==4.57.*\n")
    return python


def test_export_reads_the_same_in_transformers_4_and_5(adapter_dir, tiny_qwen2_dir, tmp_path, transformers4_python):
    from safetensors import safe_open
    from transformers import AutoConfig, AutoTokenizer

    adapter, _ = adapter_dir
    out = export_merged(str(tiny_qwen2_dir), adapter, tmp_path / "bf16", dtype="bf16")
    config = json.loads((out / "config.json").read_text())
    assert config["rope_parameters"]["rope_theta"] == config["rope_theta"] == 1_000_000
    assert config["dtype"] == "bfloat16"
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    texts = ["stemiwordx then troponinzz rises", "<|im_start|>user\nChest pain 37.5 °C<|im_end|>\n", "Ωμέγα — ß"]
    tok5 = AutoTokenizer.from_pretrained(str(out))
    assert AutoConfig.from_pretrained(str(out)).rope_parameters["rope_theta"] == 1_000_000

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    run = subprocess.run([str(transformers4_python), "-c", READ_WITH_TRANSFORMERS4, str(out), json.dumps(texts)],
                         capture_output=True, text=True, env={**env, "HF_HUB_OFFLINE": "1"}, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    v4 = json.loads(run.stdout.strip().splitlines()[-1])
    assert v4["version"].startswith("4.57.") and v4["model_type"] == "qwen2"
    assert v4["rope_theta"] == 1_000_000 and v4["rope_scaling"] is None and v4["dtype"] == "bfloat16"
    assert v4["ids"] == [tok5(t)["input_ids"] for t in texts] and v4["length"] == len(tok5)
    assert v4["text"] == texts and (v4["eos"], v4["pad"]) == (tok5.eos_token, tok5.pad_token) and v4["template"]


def test_portable_config_translates_rope_scaling_and_dtype():
    yarn = {"model_type": "qwen2", "dtype": "bfloat16",
            "rope_parameters": {"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0, "partial_rotary_factor": 0.5}}
    out, notes = portable_config(yarn)
    assert out["rope_theta"] == 1e6 and out["partial_rotary_factor"] == 0.5 and out["torch_dtype"] == "bfloat16"
    assert out["rope_scaling"] == {"rope_type": "yarn", "factor": 4.0} and out["rope_parameters"] == yarn["rope_parameters"]
    assert not notes and "rope_scaling" not in portable_config({"rope_parameters": {"rope_theta": 5e5}})[0]
    per_layer = {"rope_parameters": {"full_attention": {"rope_theta": 1e6}, "sliding_attention": {"rope_theta": 1e4}}}
    kept, notes = portable_config(per_layer)
    assert kept == per_layer and "per layer type" in notes[0]
    tok = portable_tokenizer_config({"tokenizer_class": "TokenizersBackend", "extra_special_tokens": ["<a>", "<b>"]})
    assert tok == {"tokenizer_class": "PreTrainedTokenizerFast", "additional_special_tokens": ["<a>", "<b>"]}


def test_unknown_dtype_is_one_line_before_loading(tmp_path):
    with pytest.raises(ClinragError, match="--dtype: unknown export dtype 'int8' .*bf16"):
        export_merged("no-such-base", tmp_path, tmp_path / "out", dtype="int8")
