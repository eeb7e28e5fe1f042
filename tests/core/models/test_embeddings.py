"""Resizing never shrinks the padded Qwen2.5 embedding matrix."""

from __future__ import annotations

from clinrag.core.models.embeddings import embedding_rows, resize_to_tokenizer


def test_tiny_qwen2_fixture_is_padded_like_qwen25(tiny_qwen2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_qwen2_dir)
    tok = AutoTokenizer.from_pretrained(tiny_qwen2_dir)
    assert len(tok) == 151_665 and embedding_rows(model) == 151_936
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def test_resize_never_shrinks_and_grows_when_needed(tiny_qwen2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_qwen2_dir)
    tok = AutoTokenizer.from_pretrained(tiny_qwen2_dir)
    row = model.get_input_embeddings().weight[151_900].clone()
    assert resize_to_tokenizer(model, tok) == (151_936, 151_936)  # 151,665 ids fit: nothing cut
    assert (model.get_input_embeddings().weight[151_900] == row).all()
    tok.add_tokens([f"newterm{i}" for i in range(300)])  # 151,965 ids: must grow
    before, after = resize_to_tokenizer(model, tok)
    assert (before, after) == (151_936, 151_965) and len(tok) == 151_965
    assert (model.get_input_embeddings().weight[151_900] == row).all()
    assert model.config.vocab_size == 151_965
