"""Vocabulary extension on the real Qwen2.5 tokenizer and a tiny random Qwen2 (padded to 151,936 rows)."""

from __future__ import annotations

import json

import pytest
from clinrag.finetune.vocab_extend import (
    MANIFEST_NAME,
    TermError,
    extend_tokenizer,
    extend_vocabulary,
    read_terms,
)

TERMS = ["Thrombocytopenia", "antitransglutaminase", "heart failure", "CC(=O)Oc1ccccc1C(=O)O", "Sjögren"]


@pytest.fixture(scope="module")
def qwen_tok(qwen_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir))


@pytest.fixture(scope="module")
def extended(qwen_tok):
    return extend_tokenizer(qwen_tok, TERMS)


def _ids(tok, text):
    return list(tok(text, add_special_tokens=False)["input_ids"])


def test_each_term_is_one_token_in_running_text(qwen_tok, extended):
    new, plan = extended
    form_id = {fp.form: fp.id for fp in plan.forms}
    # Both forms of every term are new, except bare "Sjögren": as an added token the byte-level decoder would read
    # its "ö" as the byte 0xF6, so it is skipped with its reason (" Sjögren" decodes from raw text and is kept).
    assert len(form_id) == 2 * len(TERMS) - 1 and "Sjögren" not in form_id
    assert [(s["term"], s["form"]) for s in plan.skipped] == [("Sjögren", "Sjögren")]
    assert sorted(form_id.values()) == list(range(151_665, 151_665 + len(form_id)))
    text = ("Thrombocytopenia was severe. The patient had Thrombocytopenia, heart failure and Sjögren.\n"
            "heart failure (Thrombocytopenia) with CC(=O)Oc1ccccc1C(=O)O; antitransglutaminase IgA high.")
    ids = _ids(new, text)
    assert new.decode(ids) == text
    expected = [form_id[f] for f in ["Thrombocytopenia", " Thrombocytopenia", " heart failure", " Sjögren",
                                     "heart failure", "Thrombocytopenia", " CC(=O)Oc1ccccc1C(=O)O",
                                     " antitransglutaminase"]]
    assert [i for i in ids if i in form_id.values()] == expected
    # No lone space token before a term: the space travels inside the term's token.
    space = new.convert_tokens_to_ids("Ġ")
    assert space not in ids
    assert len(ids) < len(_ids(qwen_tok, text))


def test_other_text_encodes_exactly_as_before(qwen_tok, extended):
    new, _ = extended
    # Case variants and words that merely contain a term keep their original pieces.
    for text in ["Severe thrombocytopenia differs from THROMBOCYTOPENIA.", "Thrombocytopenias vary; xheart failure",
                 "<|im_start|>user\nA 27-year-old woman, Hb 11.5 g/dl.<|im_end|>"]:
        assert _ids(new, text) == _ids(qwen_tok, text)
        assert new.decode(_ids(new, text)) == text
    # Mid-sentence, the plural reuses the term: " Thrombocytopenia" + "s".
    ids = _ids(new, "Most Thrombocytopenias resolve")
    assert new.convert_ids_to_tokens(ids) == ["Most", " Thrombocytopenia", "s", "Ġresolve"]


def test_planning_errors(qwen_tok):
    with pytest.raises(TermError, match="already in the vocabulary"):
        extend_tokenizer(qwen_tok, ["the"])
    with pytest.raises(TermError, match="empty"):
        extend_tokenizer(qwen_tok, ["Thrombocytopenia", "  "])
    with pytest.raises(TermError, match="listed twice"):
        extend_tokenizer(qwen_tok, ["Thrombocytopenia", "Thrombocytopenia"])
    with pytest.raises(TermError, match="special token"):
        extend_tokenizer(qwen_tok, ["<|im_end|>"])


def test_read_terms_names_lines(tmp_path):
    f = tmp_path / "terms.txt"
    f.write_text("# recommended\nThrombocytopenia\n\nheart failure\nThrombocytopenia\n", encoding="utf-8")
    with pytest.raises(TermError, match="line 5.*first on line 2"):
        read_terms(f)
    f.write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(TermError, match="no terms"):
        read_terms(f)


def test_extend_padded_model_never_shrinks_mean_init_and_round_trip(tiny_qwen2_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(tiny_qwen2_dir)
    base_tok = AutoTokenizer.from_pretrained(tiny_qwen2_dir)
    base_emb = base.get_input_embeddings().weight.detach().clone()
    out = tmp_path / "ext"
    manifest = extend_vocabulary(tiny_qwen2_dir, TERMS[:3], out, init="mean")

    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    emb = model.get_input_embeddings().weight.detach()
    assert emb.shape[0] == 151_936  # new ids land in the padding rows; nothing cut
    assert manifest["rows_before"] == manifest["rows_after"] == 151_936
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    on_disk = json.loads((out / MANIFEST_NAME).read_text())
    assert on_disk == manifest and on_disk["base_model"] == str(tiny_qwen2_dir)
    assert on_disk["added_ids"] == [a["id"] for a in on_disk["added"]] == list(range(151_665, 151_671))
    assert set(on_disk["terms"]) == set(TERMS[:3])
    for entry in on_disk["added"]:
        assert entry["init"] == "mean"
        assert entry["source_ids"] == _ids(base_tok, entry["form"])
        assert _ids(tok, entry["form"]) == [entry["id"]]
        torch.testing.assert_close(emb[entry["id"]], base_emb[entry["source_ids"]].mean(dim=0))
    # Untouched rows are unchanged, including the padding rows past the new ids.
    assert torch.equal(emb[:151_665], base_emb[:151_665]) and torch.equal(emb[151_671:], base_emb[151_671:])
    text = "The patient had Thrombocytopenia and heart failure.\nantitransglutaminase IgA 177."
    assert tok.decode(_ids(tok, text)) == text
    assert _ids(tok, text) == _ids(AutoTokenizer.from_pretrained(out), text)
    with torch.no_grad():  # the saved model runs on the new ids
        logits = model(torch.tensor([_ids(tok, text)])).logits
    assert logits.shape[-1] == 151_936 and torch.isfinite(logits).all()


def test_growth_untied_head_and_other_inits(qwen_tokenizer_dir, tmp_path):
    """A model with exactly one row per id must grow; an untied lm_head is initialised too."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    torch.manual_seed(1)
    config = Qwen2Config(vocab_size=151_665, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False)
    src = tmp_path / "untied"
    Qwen2ForCausalLM(config).save_pretrained(src)
    AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir)).save_pretrained(src)
    base = AutoModelForCausalLM.from_pretrained(src)
    head = base.get_output_embeddings().weight.detach().clone()
    emb = base.get_input_embeddings().weight.detach().clone()

    m = extend_vocabulary(src, ["Thrombocytopenia"], tmp_path / "mean", init="mean")
    assert (m["rows_before"], m["rows_after"], m["lm_head_untied"]) == (151_665, 151_667, True)
    ext = AutoModelForCausalLM.from_pretrained(tmp_path / "mean")
    for entry in m["added"]:
        torch.testing.assert_close(ext.get_output_embeddings().weight[entry["id"]].detach(),
                                   head[entry["source_ids"]].mean(dim=0))
        torch.testing.assert_close(ext.get_input_embeddings().weight[entry["id"]].detach(),
                                   emb[entry["source_ids"]].mean(dim=0))

    hf = extend_vocabulary(src, ["Thrombocytopenia"], tmp_path / "hf", init="hf")
    rows = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").get_input_embeddings().weight.detach()
    torch.testing.assert_close(rows[hf["added_ids"][0]], emb.mean(dim=0), atol=1e-3, rtol=0)

    rnd = extend_vocabulary(src, ["Thrombocytopenia"], tmp_path / "random", init="random")
    rows = AutoModelForCausalLM.from_pretrained(tmp_path / "random").get_input_embeddings().weight.detach()
    new = rows[rnd["added_ids"]]
    assert 0.01 < new.std().item() < 0.03  # N(0, initializer_range=0.02)
    assert all(a["init"] == "random" for a in rnd["added"])


def test_model_tokenizer_mismatch_is_refused(qwen_tokenizer_dir, tmp_path):
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(2)
    config = Qwen2Config(vocab_size=49_152, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1)
    src = tmp_path / "small"
    Qwen2ForCausalLM(config).save_pretrained(src)
    AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir)).save_pretrained(src)
    with pytest.raises(TermError, match="mismatch"):
        extend_vocabulary(src, ["Thrombocytopenia"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="valid: mean, hf, random"):
        extend_vocabulary(src, ["Thrombocytopenia"], tmp_path / "out", init="zero")


def test_extend_real_smollm2_gguf_grows_and_saves_safetensors(smollm2_gguf, tmp_path):
    """The one real-model test: a .gguf is de-quantised, extended (49,152 rows must grow) and saved."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "smol-ext"
    manifest = extend_vocabulary(smollm2_gguf, ["Thrombocytopenia", "mEq/L"], out)
    assert manifest["rows_before"] == 49_152 and manifest["rows_after"] == 49_156
    assert (out / "model.safetensors").exists()
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    text = "Thrombocytopenia with sodium 128 mEq/L and Thrombocytopenia."
    ids = _ids(tok, text)
    assert tok.decode(ids) == text
    space_term, bare_term = manifest["terms"]["Thrombocytopenia"]
    space_unit = manifest["terms"]["mEq/L"][0]
    assert [i for i in ids if i in manifest["added_ids"]] == [bare_term, space_unit, space_term]
    emb = model.get_input_embeddings().weight.detach()
    for entry in manifest["added"]:
        torch.testing.assert_close(emb[entry["id"]], emb[entry["source_ids"]].mean(dim=0))
