"""The real Qwen2.5-0.5B-architecture stand-in (Qwen2.5-Coder-0.5B-Instruct, 151,936 untied embedding rows).

Slow: each test loads the 0.5B model on the CPU (the folder `make models` converts once; ~5 s to load). Kept short —
a 2-question case, a small index, a few new tokens, two optimizer steps — so the file stays within a few minutes.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

ROWS = 151_936
QWEN_IDS = 151_665  # ids the Qwen2.5 tokenizer defines; rows above are padding
CHINESE = "患者男性，58岁，突发胸痛两小时。心电图示下壁导联ST段抬高。最可能的诊断是什么？"


@pytest.fixture
def standin(standin_dir):
    """A fresh float32 load (the vocabulary test writes into its padding rows)."""
    from clinrag.core.models.loading import load_causal_lm

    return load_causal_lm(str(standin_dir), device="cpu", dtype="float32")


def test_standin_has_qwen25_05b_layout(standin_dir):
    config = json.loads((standin_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2" and config["num_hidden_layers"] == 24
    assert (config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"]) == (896, 14, 2)
    assert config["vocab_size"] == ROWS and config["tie_word_embeddings"] is False


def test_tokenizer_ids_equal_the_gguf_own_tokenizer(standin_dir, shared_data):
    """The converted folder carries clinrag's exact offline Qwen2.5 tokenizer; it must give the GGUF's own ids."""
    from clinrag.core.cases import load_cases
    from clinrag.core.models.standin import gguf_path
    from transformers import AutoTokenizer

    gguf = gguf_path()
    if not gguf.is_file():
        pytest.fail(f"{gguf} is missing: run `make models`")
    own = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    ours = AutoTokenizer.from_pretrained(str(standin_dir))
    texts = [CHINESE]
    for name in ("cases/medquad_multi_dev.jsonl", "sft/casimedicos_en_train.jsonl", "cases/pubmedqa_dev.jsonl"):
        for case in load_cases(shared_data / name)[:5]:
            texts += [case.clinical_scenario, *case.questions, *(case.answers or [])]
    for text in texts:
        assert ours.encode(text, add_special_tokens=False) == own.encode(text, add_special_tokens=False), text[:80]
    chat = [{"role": "user", "content": CHINESE}]
    assert (ours.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            == own.apply_chat_template(chat, tokenize=False, add_generation_prompt=True))


def test_vocabulary_extension_keeps_rows_and_old_weights(standin):
    """New terms land in Qwen's padding rows (151,665 ids, 151,936 rows): no row is removed, no old id's row changes,
    input and output matrices both get the sub-token mean (this file's LM head is untied)."""
    import torch
    from clinrag.finetune.vocab_extend import extend_model, extend_tokenizer

    model, tok = standin
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    before_in, before_out = emb[:QWEN_IDS].clone(), head[:QWEN_IDS].clone()
    new_tok, plan = extend_tokenizer(tok, ["mmHg", "troponinemia"])
    info = extend_model(model, tok, new_tok, plan, "mean")
    assert info["rows_before"] == ROWS and info["rows_after"] >= ROWS and info["lm_head_untied"]
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert emb.shape[0] == head.shape[0] == info["rows_after"]
    assert torch.equal(emb[:QWEN_IDS], before_in) and torch.equal(head[:QWEN_IDS], before_out)
    for fp in plan.forms:
        assert QWEN_IDS <= fp.id < emb.shape[0]
        assert torch.allclose(emb[fp.id], before_in[fp.source_ids].mean(0), atol=1e-6)
        assert torch.allclose(head[fp.id], before_out[fp.source_ids].mean(0), atol=1e-6)
        assert new_tok.encode(fp.form, add_special_tokens=False) == [fp.id]


def test_standin_answers_a_shared_case_through_the_graph(standin_dir, shared_data, embedder, tmp_path):
    from clinrag.agent.run import build_agent
    from clinrag.core.cases import load_cases
    from clinrag.retrieval.passages import load_passages
    from clinrag.retrieval.store import PassageIndex

    case = next(c for c in load_cases(shared_data / "cases" / "medquad_multi_dev.jsonl") if c.n_questions >= 3)
    case = case.model_copy(update={k: (getattr(case, k) or [None] * case.n_questions)[:2] for k in
                                   ("questions", "answers", "evidence")})
    gold = {pid for ids in case.evidence for pid in ids}
    passages = [p for p in load_passages([shared_data / "corpus" / "medical_passages.jsonl"])
                if p.id in gold or p.title.split(" (")[0].lower() in case.clinical_scenario.lower()][:12]
    PassageIndex.build(passages, embedder).save(tmp_path / "index")
    agent = build_agent(tmp_path / "index", generator="hf", k=2,
                        generator_options={"model": str(standin_dir), "max_new_tokens": 8})
    response = agent.answer(case)
    assert [a.index for a in response.answers] == [1, 2]
    assert all(a.answer.strip() for a in response.answers) and response.summary.strip()
    shown = {p.id for p in passages}
    assert all(s.id in shown for a in response.answers for s in a.sources) and any(a.sources for a in response.answers)
    assert response.usage.llm_calls >= 3  # two answers and the summary


def test_two_lora_steps_change_the_adapter_and_the_new_rows_only(standin_dir, tmp_path):
    """Vocabulary extension written to disk, then two LoRA steps: LoRA weights move from their init, the new
    embedding rows train, and the saved adapter holds no other embedding rows."""
    import torch
    from clinrag.finetune.config import load_config
    from clinrag.finetune.sft import run_finetune
    from clinrag.finetune.vocab_extend import extend_vocabulary
    from safetensors.torch import load_file

    ext = tmp_path / "ext"
    manifest = extend_vocabulary(str(standin_dir), ["mmHg"], ext)
    new_ids = sorted(manifest["added_ids"])
    rows = [{"id": f"c{i}", "clinical_scenario": f"Blood pressure {150 + i}/95 mmHg in a man of {50 + i}.",
             "questions": ["Is the blood pressure raised?"], "answers": [f"Yes, {150 + i}/95 mmHg is raised."]}
            for i in range(4)]
    data = tmp_path / "cases.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(None, {"model": str(ext), "data": str(data), "out": str(tmp_path / "run"), "mode": "lora",
                             "vocab_manifest": str(ext / "added_tokens_manifest.json"), "peft.r": "4",
                             "peft.alpha": "8", "max_steps": "2", "train.batch_size": "2",
                             "train.max_length": "384", "data.eval_fraction": "0", "train.eval_before": "false",
                             "train.warmup_ratio": "0",
                             "train.logging_steps": "1", "train.early_stopping_patience": "0",
                             "train.learning_rate": "1e-2", "data.summaries": "false"})
    run_finetune(cfg, log=lambda m: None)
    saved = load_file(str(tmp_path / "run" / "adapter_model.safetensors"))
    lora_b = [v for k, v in saved.items() if "lora_B" in k]
    assert lora_b and any(float(v.abs().max()) > 0 for v in lora_b)  # B starts at zero: it moved
    token_keys = [k for k in saved if "trainable_tokens" in k]
    assert token_keys, sorted(saved)[:10]
    base = load_file(str(next(ext.glob("*.safetensors"))))
    base_emb = next(v for k, v in base.items() if k.endswith("embed_tokens.weight"))
    for key in token_keys:
        delta = saved[key]
        assert delta.shape[0] == len(new_ids)  # only the new rows are stored, hence trainable
        assert not torch.allclose(delta.float(), base_emb[new_ids].float()) or "lm_head" in key
    record = json.loads((tmp_path / "run" / "clinrag_training.json").read_text())
    from clinrag.core.prompts import templates_hash

    assert record["prompt_templates_hash"] == templates_hash()
