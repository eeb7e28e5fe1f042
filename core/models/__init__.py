"""Model loading shared by every layer above: causal LMs and tokenizers from a hub id, a folder or a ``.gguf``
file, PEFT adapters, the offline Qwen2.5 tokenizer, embedding-row resizing and the vocabulary manifest."""
