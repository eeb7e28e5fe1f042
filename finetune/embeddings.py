"""Resizing a model's embeddings to a tokenizer without ever shrinking them.

Qwen2.5-0.5B has 151,936 embedding rows for 151,665 token ids (the matrix is padded for efficient kernels).
A naive ``model.resize_token_embeddings(len(tokenizer))`` would cut the padding rows — and any row past
``len(tokenizer)`` — so every resize here goes to ``max(len(tokenizer), current rows)``. New token ids may then
land in padding rows that were never trained: callers initialise those rows explicitly.
"""

from __future__ import annotations

from typing import Any


def embedding_rows(model: Any) -> int:
    return int(model.get_input_embeddings().weight.shape[0])


def resize_to_tokenizer(model: Any, tokenizer: Any, *, pad_to_multiple_of: int | None = None) -> tuple[int, int]:
    """Grow the input (and untied output) embeddings to hold every id of ``tokenizer``; never shrink.

    Returns ``(rows_before, rows_after)``. Rows added by growth are left for the caller to initialise (transformers
    may fill them with its own mean init; :mod:`clinrag.finetune.vocab_extend` overwrites them explicitly).
    """
    before = embedding_rows(model)
    needed = len(tokenizer)
    if needed <= before:
        return before, before
    model.resize_token_embeddings(needed, pad_to_multiple_of=pad_to_multiple_of, mean_resizing=False)
    after = embedding_rows(model)
    if after < needed:  # defensive: a model class that ignored the request
        raise RuntimeError(f"embedding resize to {needed} rows left {after} rows")
    return before, after
