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


# -- initialising new rows ---------------------------------------------------------------------------------
#: How new embedding rows are initialised. ``mean``: each row is the mean of the rows of the term's original
#: sub-tokens (the model starts from "what these pieces meant together"); ``hf``: the mean of all original rows
#: plus tiny covariance noise, as transformers' ``mean_resizing`` does; ``random``: N(0, initializer_range²),
#: as a freshly initialised model would have. Measured comparison: docs/vocabulary.md.
INIT_METHODS = ("mean", "hf", "random")


def check_init(init: str) -> str:
    if init not in INIT_METHODS:
        raise ValueError(f"unknown init {init!r} (valid: {', '.join(INIT_METHODS)})")
    return init


def init_rows_subtoken_mean(weight: Any, new_ids: list[int], source_ids: list[list[int]]) -> None:
    """Set ``weight[new_ids[i]]`` to the mean of ``weight[source_ids[i]]`` (in place, float32 accumulation)."""
    import torch

    if len(new_ids) != len(source_ids):
        raise ValueError(f"{len(new_ids)} new ids but {len(source_ids)} source-id lists")
    with torch.no_grad():
        for new, src in zip(new_ids, source_ids):
            if not src:
                raise ValueError(f"new id {new} has no source sub-tokens to average")
            weight[new] = weight[list(src)].float().mean(dim=0).to(weight.dtype)


def init_rows_global_mean(weight: Any, new_ids: list[int], n_original: int, *, seed: int = 0) -> None:
    """transformers' ``mean_resizing`` applied to exactly ``new_ids``: a sample of N(μ, 1e-9·Σ) where μ and Σ are
    the mean and covariance of the first ``n_original`` rows (the original vocabulary, excluding padding rows).

    Done here rather than through ``resize_token_embeddings(mean_resizing=True)`` because new ids may land in
    padding rows that a resize never touches (Qwen2.5: 151,936 rows for 151,665 ids)."""
    import torch

    with torch.no_grad():
        old = weight[:n_original].float()
        mean = old.mean(dim=0)
        centered = old - mean
        cov = centered.T @ centered / n_original
        gen = torch.Generator().manual_seed(seed)
        try:
            chol = torch.linalg.cholesky(1e-9 * cov)
            noise = torch.randn(len(new_ids), mean.shape[0], generator=gen) @ chol.T
        except RuntimeError:  # not positive definite: transformers falls back to the plain mean too
            noise = torch.zeros(len(new_ids), mean.shape[0])
        weight[list(new_ids)] = (mean + noise).to(weight.dtype)


def init_rows_random(weight: Any, new_ids: list[int], std: float, *, seed: int = 0) -> None:
    """N(0, std²) rows, like a model's own ``_init_weights`` (``std`` = ``config.initializer_range``)."""
    import torch

    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        rows = torch.randn(len(new_ids), weight.shape[1], generator=gen) * std
        weight[list(new_ids)] = rows.to(weight.dtype)


def output_embeddings_untied(model: Any) -> bool:
    """True when the model has an ``lm_head`` with its own weights (not tied to the input embeddings)."""
    out = model.get_output_embeddings()
    if out is None:
        return False
    return out.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
