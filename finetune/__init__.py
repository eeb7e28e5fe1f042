"""Fine-tuning: the offline Qwen2.5 tokenizer, vocabulary audit and extension, SFT data and QLoRA training."""
