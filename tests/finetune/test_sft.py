"""SFT on a tiny random Qwen2 (real Qwen2.5 tokenizer, 151,936-row padded tied embedding), every mode, on CPU.

Each run is a handful of optimizer steps on short cases so the whole file stays within a couple of minutes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from clinrag.core.models.manifest import ManifestError
from clinrag.finetune.config import config_from_dict, load_config
from clinrag.finetune.sft import run_finetune
from safetensors.torch import load_file

pytestmark = pytest.mark.slow
NEW_TERMS = ["stemiwordx", "troponinzz"]


def _cases(path: Path) -> Path:
    rows = []
    for i in range(8):
        rows.append({"id": f"c{i}", "clinical_scenario": f"Man {40 + i} with chest pain, stemiwordx on ECG.",
                     "questions": ["What rises?", "Dose?"],
                     "answers": [f"troponinzz rises [{i}]", f"{i + 1} mg"], "summary": f"Case {i}: stemiwordx."})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def cases_file(tmp_path_factory) -> Path:
    return _cases(tmp_path_factory.mktemp("cases") / "cases.jsonl")


@pytest.fixture(scope="module")
def extended_dir(tmp_path_factory, tiny_qwen2_dir) -> tuple[Path, Path, list[int]]:
    """The tiny model extended by `clinrag vocab extend`'s function (new ids land in the padding rows: no resize)."""
    from clinrag.finetune.vocab_extend import extend_vocabulary

    out = tmp_path_factory.mktemp("ext") / "model"
    manifest = extend_vocabulary(str(tiny_qwen2_dir), NEW_TERMS, out)
    return out, out / "added_tokens_manifest.json", list(manifest["added_ids"])


def _cfg(model: Path, data: Path, out: Path, **over):
    base = {"model": str(model), "data": str(data), "out": str(out), "mode": "lora", "peft.r": "4",
            "peft.alpha": "8", "max_steps": "4", "train.batch_size": "2", "train.max_length": "192",
            "train.eval_steps": "2", "train.logging_steps": "1", "data.eval_fraction": "0.25",
            "train.eval_before": "false", "train.early_stopping_patience": "0"}
    base.update({k: str(v) for k, v in over.items()})
    return load_config(None, base)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, extended_dir, cases_file):
    model, manifest, ids = extended_dir
    out = tmp_path_factory.mktemp("run") / "lora"
    metrics = run_finetune(_cfg(model, cases_file, out, vocab_manifest=manifest, **{"train.eval_before": "true"}),
                           log=lambda m: None)
    return out, metrics, model, ids


def test_output_folder_is_a_standard_peft_adapter(lora_run):
    out, metrics, model, _ = lora_run
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "config.resolved.yaml",
                 "metrics.json", "added_tokens_manifest.json", "report.md", "loss.png"):
        assert (out / name).exists(), name
    assert not (out / "training_args.bin").exists()
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(model)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["global_step"] == 4 and saved["tokens_per_s"] > 0 and saved["peak_rss_mb"] > 0
    assert saved["eval_loss_before"] > 0 and saved["eval_loss_after"] > 0 and saved["with_passages"] is False
    assert saved["new_token_layers"] == ["model.embed_tokens"]  # tied: the LM head follows, storing nothing itself
    assert "overfitting" in saved and "Verdict" in (out / "report.md").read_text()
    cfg = config_from_dict(yaml.safe_load((out / "config.resolved.yaml").read_text()))
    assert cfg.train.max_steps == 4 and cfg.peft.mode == "lora"


def test_new_rows_change_and_old_rows_do_not(lora_run):
    out, _, model, ids = lora_run
    from transformers import AutoTokenizer

    text = "Man 40 with chest pain, stemiwordx on ECG. troponinzz rises"  # as in the training cases
    used_ids = set(AutoTokenizer.from_pretrained(str(model))(text)["input_ids"]) & set(ids)
    assert used_ids  # the case text does use the new tokens
    base = load_file(str(model / "model.safetensors"))["model.embed_tokens.weight"]
    tensors = load_file(str(out / "adapter_model.safetensors"))
    deltas = [k for k in tensors if "trainable_tokens_delta" in k]
    assert deltas, list(tensors)
    from clinrag.finetune.export import load_adapter_model

    peft_model, _ = load_adapter_model(str(model), out)
    merged = peft_model.merge_and_unload()
    emb = merged.get_input_embeddings().weight.detach()
    assert emb.shape == base.shape  # 151,667 ids fit in the 151,936 padded rows: no resize
    old = torch.ones(emb.shape[0], dtype=torch.bool)
    old[ids] = False
    assert torch.equal(emb[old], base[old])  # every old row exactly as it was
    for i in ids:
        if i in used_ids:
            assert not torch.allclose(emb[i], base[i])  # the new rows seen in training were trained
    assert merged.get_output_embeddings().weight.data_ptr() == emb.data_ptr()  # still tied


def test_qlora_on_cpu(tiny_qwen2_dir, cases_file, tmp_path):
    m = run_finetune(_cfg(tiny_qwen2_dir, cases_file, tmp_path / "q", mode="qlora", max_steps=2,
                          **{"data.eval_fraction": "0"}), log=lambda m: None)
    assert m["linear4bit_layers"] > 0 and m["global_step"] == 2
    assert m["loss_head"] == "label_positions"  # CPU: the loss takes logits at label positions only
    assert (tmp_path / "q" / "adapter_model.safetensors").exists()


def test_full_mode_saves_a_model(tiny_qwen2_dir, cases_file, tmp_path):
    from transformers import AutoModelForCausalLM

    m = run_finetune(_cfg(tiny_qwen2_dir, cases_file, tmp_path / "f", mode="full", max_steps=2,
                          **{"data.eval_fraction": "0", "train.learning_rate": "1e-3"}), log=lambda m: None)
    assert m["linear4bit_layers"] == 0 and not (tmp_path / "f" / "adapter_config.json").exists()
    trained = AutoModelForCausalLM.from_pretrained(str(tmp_path / "f"))
    base = AutoModelForCausalLM.from_pretrained(str(tiny_qwen2_dir))
    assert not torch.equal(trained.model.layers[0].mlp.up_proj.weight, base.model.layers[0].mlp.up_proj.weight)


def test_resume_after_interruption_matches_uninterrupted(tiny_qwen2_dir, cases_file, tmp_path):
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):  # stands in for a kill right after the step-2 checkpoint
        def on_save(self, args, state, control, **kw):
            if state.global_step == 2:
                control.should_training_stop = True

    over = {"data.eval_fraction": "0", "train.eval_steps": "2", "peft.dropout": "0.1"}
    run_finetune(_cfg(tiny_qwen2_dir, cases_file, tmp_path / "a", **over), log=lambda m: None)
    part = run_finetune(_cfg(tiny_qwen2_dir, cases_file, tmp_path / "b", **over), log=lambda m: None,
                        callbacks=[StopAt()])
    assert part["global_step"] == 2
    resumed = run_finetune(_cfg(tiny_qwen2_dir, cases_file, tmp_path / "b", resume="true", **over), log=lambda m: None)
    assert resumed["global_step"] == 4 and resumed["resumed_from"].endswith("checkpoint-2")
    a = load_file(str(tmp_path / "a" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "b" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    la = [h["loss"] for h in json.loads((tmp_path / "a" / "log_history.json").read_text()) if "loss" in h]
    lb = [h["loss"] for h in json.loads((tmp_path / "b" / "log_history.json").read_text()) if "loss" in h]
    assert la[-2:] == pytest.approx(lb[-2:], rel=1e-5)


def test_manifest_not_matching_tokenizer_fails_before_loading(tiny_qwen2_dir, cases_file, tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"added_ids": [151700]}))
    with pytest.raises(ManifestError, match="beyond the tokenizer's 151665 ids"):
        run_finetune(_cfg(tiny_qwen2_dir, cases_file, tmp_path / "x", vocab_manifest=bad), log=lambda m: None)
    assert not (tmp_path / "x").exists()


def test_cli_rejects_unknown_key_and_empty_data(tmp_path, cases_file, capsys):
    from clinrag.cli import main

    assert main(["finetune", "--model", "m", "--data", str(cases_file), "--learning-rat", "1"]) == 2
    assert "unknown config key '--learning-rat'" in capsys.readouterr().err
    empty = tmp_path / "e.jsonl"
    empty.write_text(json.dumps({"id": "1", "clinical_scenario": "s", "questions": ["q?"]}) + "\n")
    assert main(["finetune", "--model", "m", "--data", str(empty)]) == 2
    assert "no training example has a completion" in capsys.readouterr().err


def test_option_scoring_with_shared_prompt_cache_matches_full_forward(tiny_qwen2_dir):
    """option_accuracy runs the prompt once and scores options from the KV cache: same numbers as full forwards."""
    from clinrag.finetune.report import _score_continuations, option_accuracy
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_qwen2_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_qwen2_dir)).eval()
    prompt = tok("Patient with chest pain. Options: A or B?")["input_ids"]
    comps = [tok("A. aspirin", add_special_tokens=False)["input_ids"],
             tok("B. low molecular weight heparin", add_special_tokens=False)["input_ids"]]
    sums, firsts = _score_continuations(model, prompt, comps, torch.device("cpu"))
    for c, s, f in zip(comps, sums, firsts):
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([prompt + c])).logits[0].float(), -1)
        lp = [float(logp[len(prompt) - 1 + t, c[t]]) for t in range(len(c))]
        assert s == pytest.approx(sum(lp), abs=1e-3) and f == pytest.approx(lp[0], abs=1e-4)
    from clinrag.core.cases import Case

    case = Case(id="x", clinical_scenario="s", questions=["q?"], options=[{"A": "a", "B": "b"}], answer_key=["A"])
    acc = option_accuracy(model, tok, [case])
    assert acc["n"] == 1 and acc["correct"] in (0, 1)


def test_continual_pretraining_stage_runs_before_sft(tiny_qwen2_dir, cases_file, tmp_path):
    kb = Path(__file__).resolve().parents[2] / "examples" / "demo" / "knowledge_base.jsonl"
    m = run_finetune(_cfg(tiny_qwen2_dir, cases_file, tmp_path / "c", max_steps=1,
                          **{"data.eval_fraction": "0", "train.cpt_corpus": str(kb), "train.cpt_steps": "1"}),
                     log=lambda m: None)
    assert m["cpt"]["steps"] == 1 and m["cpt"]["passages"] > 10 and m["cpt"]["loss"] > 0
    assert m["global_step"] == 1 and not (tmp_path / "c" / "cpt").exists()


def _one_question_cases(path: Path, n: int) -> Path:
    rows = [{"id": f"e{i}", "clinical_scenario": f"Woman {30 + i} with dyspnoea.", "questions": ["Next test?"],
             "answers": [f"D-dimer {i}"]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("batching", ["padded", "packing"])
def test_evaluation_with_tiny_and_uneven_eval_sets(tiny_qwen2_dir, cases_file, tmp_path, batching):
    """Eval sets of 1, 2 and 3 examples with batch size 2 (uneven last batch): the label-position loss's metrics
    are sums, reduced across ranks; gather_for_metrics used to cut them to the last batch's remainder and crash."""
    from clinrag.finetune.data import to_dataset
    from clinrag.finetune.sft import prepare
    from clinrag.finetune.trainer import make_trainer_class
    from clinrag.finetune.trl_args import to_sft_config
    from transformers import AutoModelForCausalLM

    cfg = _cfg(tiny_qwen2_dir, cases_file, tmp_path / "out", **{"data.eval": str(_one_question_cases(
        tmp_path / "e.jsonl", 3)), "data.summaries": "false", "train.batching": batching})
    data, tok, _, _ = prepare(cfg)
    assert len(data.eval_rows) == 3
    args = to_sft_config(cfg, tmp_path / "ckpt", has_eval=True, cuda=False)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_qwen2_dir))
    trainer = make_trainer_class()(model=model, args=args, train_dataset=to_dataset(data.train_rows),
                                   eval_dataset=to_dataset(data.eval_rows), processing_class=tok)
    assert trainer.loss_head == "label_positions"
    losses = []
    for n in (1, 2, 3):
        result = trainer.evaluate(eval_dataset=to_dataset(data.eval_rows[:n]))
        assert result["eval_loss"] > 0 and 0.0 <= result["eval_mean_token_accuracy"] <= 1.0
        assert result["eval_entropy"] > 0
        losses.append(result["eval_loss"])
    assert losses[0] != losses[2]  # each eval set was scored on its own examples


def test_cli_run_with_two_eval_examples_and_tensorboard(extended_dir, tmp_path, capsys):
    """The #11 command (extended tiny Qwen2, LoRA, 2 eval examples) runs end to end; report_to writes event files."""
    from clinrag.cli import main

    model, manifest, _ = extended_dir
    train = _cases(tmp_path / "train.jsonl")
    evals = _one_question_cases(tmp_path / "eval.jsonl", 2)
    out = tmp_path / "tb"
    rc = main(["finetune", "--model", str(model), "--data", str(train), "--eval-data", str(evals), "--mode", "lora",
               "--max-steps", "2", "--out", str(out), "--vocab-manifest", str(manifest), "--train.report_to",
               "tensorboard", "--train.eval_steps", "1", "--train.batch_size", "2", "--train.max_length", "192",
               "--peft.r", "2", "--train.early_stopping_patience", "0", "--data.summaries", "false"])
    assert rc == 0, capsys.readouterr().err
    events = list((out / "runs").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    saved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert saved["train"]["report_to"] == "tensorboard" and saved["model"]["bnb_4bit_compute_dtype"] == "bfloat16"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eval_examples"] == 2 and metrics["eval_loss_before"] > 0 and metrics["global_step"] == 2


# -- an untied LM head (the Qwen2.5-Coder stand-in's layout): the new rows train in both matrices -------------------

@pytest.fixture(scope="module")
def untied_extended(tmp_path_factory, qwen_tokenizer_dir) -> tuple[Path, list[int]]:
    """A tiny Qwen2 with its own output matrix (tie_word_embeddings false, 151,936 padded rows), extended by
    `clinrag vocab extend`'s function: new input and output rows are the means of their sub-token rows."""
    from clinrag.finetune.vocab_extend import extend_vocabulary
    from clinrag.core.models.qwen_tokenizer import QWEN25_EMBEDDING_ROWS
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=QWEN25_EMBEDDING_ROWS, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         tie_word_embeddings=False, rope_theta=1_000_000.0,
                         bos_token_id=151643, eos_token_id=151645, pad_token_id=151643)
    src = tmp_path_factory.mktemp("untied") / "base"
    Qwen2ForCausalLM(config).save_pretrained(src, safe_serialization=True)
    AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir)).save_pretrained(src)
    out = src.parent / "extended"
    manifest = extend_vocabulary(str(src), NEW_TERMS, out)
    assert manifest["lm_head_untied"] is True
    return out, list(manifest["added_ids"])


class _Probe:
    """Records, at the end of training, the in-memory model's logits on a probe input and its LM head's type."""

    def __init__(self, input_ids):
        from transformers import TrainerCallback

        probe = self

        class Callback(TrainerCallback):
            def on_train_end(self, args, state, control, model=None, **kw):
                head = model.get_output_embeddings()
                probe.head_base = type(getattr(getattr(head, "token_adapter", None), "base_layer", head)).__name__
                model.eval()
                with torch.no_grad():
                    probe.logits = model(input_ids=input_ids).logits.float()
                model.train()

        self.input_ids, self.callback, self.logits, self.head_base = input_ids, Callback(), None, None


def _untied_run(model: Path, cases: Path, out: Path, mode: str) -> tuple[dict, _Probe]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model))
    probe = _Probe(torch.tensor([tok("Man 40 with chest pain, stemiwordx on ECG. troponinzz rises")["input_ids"]]))
    cfg = _cfg(model, cases, out, mode=mode, max_steps=2, vocab_manifest=model / "added_tokens_manifest.json",
               **{"data.eval_fraction": "0", "train.learning_rate": "1e-2", "peft.dropout": "0"})
    return run_finetune(cfg, log=lambda m: None, callbacks=[probe.callback]), probe


def test_untied_head_trains_new_input_and_output_rows(untied_extended, cases_file, tmp_path):
    from clinrag.core.models.loading import load_causal_lm
    from clinrag.finetune.export import export_merged
    from transformers import AutoModelForCausalLM

    model, ids = untied_extended
    out = tmp_path / "lora"
    metrics, probe = _untied_run(model, cases_file, out, "lora")
    assert metrics["new_token_layers"] == ["model.embed_tokens", "lm_head"] and metrics["global_step"] == 2
    tensors = load_file(str(out / "adapter_model.safetensors"))
    assert any("embed_tokens.token_adapter.trainable_tokens_delta" in k for k in tensors), list(tensors)
    assert any("lm_head.token_adapter.trainable_tokens_delta" in k for k in tensors), list(tensors)
    assert any("lora_B" in k and tensors[k].abs().sum() > 0 for k in tensors)  # two steps moved the LoRA weights

    # Loaded back through clinrag's one loader: the same logits as the trained model in memory.
    peft_model, _ = load_causal_lm(str(model), adapter=out, device="cpu", dtype="float32")
    with torch.no_grad():
        loaded = peft_model(input_ids=probe.input_ids).logits.float()
    torch.testing.assert_close(loaded, probe.logits, rtol=1e-4, atol=1e-4)
    # The adapter carries the new input and output rows whole, so on the plain (unextended) base, whose rows for
    # those ids are untrained padding, it gives the same logits: the ablation evaluates both adapters on one base.
    plain, _ = load_causal_lm(str(model.parent / "base"), adapter=out, device="cpu", dtype="float32")
    with torch.no_grad():
        torch.testing.assert_close(plain(input_ids=probe.input_ids).logits.float(), probe.logits,
                                   rtol=1e-4, atol=1e-4)

    base = load_file(str(model / "model.safetensors"))
    merged = peft_model.merge_and_unload()
    old = torch.ones(base["lm_head.weight"].shape[0], dtype=torch.bool)
    old[ids] = False
    moved = {}
    for weight, key in ((merged.get_input_embeddings().weight, "model.embed_tokens.weight"),
                        (merged.get_output_embeddings().weight, "lm_head.weight")):
        weight = weight.detach()
        assert torch.equal(weight[old], base[key][old]), key  # no old row of either matrix moved
        moved[key] = {i for i in ids if not torch.allclose(weight[i], base[key][i])}
    assert moved["model.embed_tokens.weight"]  # input rows train where their token occurs in the two steps' batches
    assert moved["lm_head.weight"] == set(ids)  # every output row gets a softmax gradient at every label position
    assert merged.get_output_embeddings().weight.data_ptr() != merged.get_input_embeddings().weight.data_ptr()

    # Export merges both row sets: plain transformers gives the trained model's logits.
    exported = AutoModelForCausalLM.from_pretrained(str(export_merged(str(model), out, tmp_path / "merged"))).eval()
    assert not exported.config.tie_word_embeddings
    with torch.no_grad():
        torch.testing.assert_close(exported(input_ids=probe.input_ids).logits.float(), probe.logits,
                                   rtol=1e-4, atol=1e-4)


def test_untied_head_trains_under_qlora(untied_extended, cases_file, tmp_path):
    """bitsandbytes leaves the LM head an unquantised nn.Linear, which PEFT's token layer wraps like an embedding."""
    model, ids = untied_extended
    metrics, probe = _untied_run(model, cases_file, tmp_path / "q", "qlora")
    assert metrics["linear4bit_layers"] > 0 and metrics["new_token_layers"] == ["model.embed_tokens", "lm_head"]
    assert probe.head_base == "Linear"
    tensors = load_file(str(tmp_path / "q" / "adapter_model.safetensors"))
    head = next(v for k, v in tensors.items() if "lm_head.token_adapter.trainable_tokens_delta" in k)
    initial = load_file(str(model / "model.safetensors"))["lm_head.weight"][ids]
    assert head.shape == initial.shape and not torch.allclose(head.float(), initial)
