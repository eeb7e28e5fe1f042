"""The offline Qwen2.5 tokenizer is id-for-id the tiktoken encoder of the same ranks and regex."""

from __future__ import annotations

import pytest
from clinrag.core.models.qwen_tokenizer import (
    ADDED_TOKENS,
    N_BPE_RANKS,
    QWEN2_PATTERN,
    build_qwen25_tokenizer,
    load_qwen25_tokenizer,
    tiktoken_file,
)

TEXTS = [
    "A 58-year-old man with STEMI; troponin 1.2 ng/mL. Give aspirin 300 mg and clopidogrel 600 mg.",
    "Thrombocytopenia, hyperkalaemia (K+ 6.8 mmol/L) and eGFR 28 mL/min/1.73m² — CKD G4.",
    "患者男性，58岁，胸痛3小时，心电图示ST段抬高。",
    "def qtc(qt, hr):\n    rr = 60 / hr\n    return qt / rr ** (1 / 3)  # Fridericia\n\n\n",
    "   leading spaces,\ttabs\t\tand\r\nCRLF   \n\n  trailing   ",
    "1234567890 3.14159 1e-5 0x1F",
    "café naïve Ångström ﬁ ligature e\u0301",  # the last is decomposed é: NFC composes it
    "CC(=O)Oc1ccccc1C(=O)O ATGCGTAC 5-FU",
    "<|im_start|>user\nWhat is CURB-65?<|im_end|>\n<|im_start|>assistant\n",
]


@pytest.fixture(scope="module")
def tok():
    return build_qwen25_tokenizer()


@pytest.fixture(scope="module")
def reference():
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    return tiktoken.Encoding("qwen2.5", pat_str=QWEN2_PATTERN, mergeable_ranks=load_tiktoken_bpe(str(tiktoken_file())),
                             special_tokens={t: N_BPE_RANKS + i for i, (t, _) in enumerate(ADDED_TOKENS)})


@pytest.mark.parametrize("text", TEXTS)
def test_ids_equal_tiktoken(tok, reference, text):
    import unicodedata

    ids = tok.encode(text, add_special_tokens=False)
    assert ids == reference.encode(unicodedata.normalize("NFC", text), allowed_special="all")
    assert tok.decode(ids) == unicodedata.normalize("NFC", text)


def test_special_tokens_ids_and_flags(tok):
    assert len(tok) == 151_665
    for i, (content, special) in enumerate(ADDED_TOKENS):
        assert tok.convert_tokens_to_ids(content) == 151_643 + i
        assert tok.added_tokens_decoder[151_643 + i].special is special
        assert (content in tok.all_special_tokens) is special
    assert tok.pad_token == "<|endoftext|>" and tok.eos_token == "<|im_end|>"
    assert build_qwen25_tokenizer("base").eos_token == "<|endoftext|>"
    # special tokens vanish on decode with skip_special_tokens; non-special added ones do not
    assert tok.decode(tok.encode("<|im_end|><tool_call>"), skip_special_tokens=True) == "<tool_call>"


def test_chat_template(tok):
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_cached_loader_round_trip(tmp_path, monkeypatch, tok):
    monkeypatch.setenv("CLINRAG_CACHE", str(tmp_path))
    loaded = load_qwen25_tokenizer()
    assert (tmp_path / "qwen2.5-tokenizer-instruct" / "tokenizer.json").exists()
    for text in TEXTS:
        assert loaded.encode(text, add_special_tokens=False) == tok.encode(text, add_special_tokens=False)
    assert loaded.chat_template == tok.chat_template and loaded.eos_token == "<|im_end|>"
    with pytest.raises(ValueError, match="valid: instruct, base"):
        load_qwen25_tokenizer("chat")
