"""Batched greedy decoding that computes a shared prompt prefix once.

All sub-questions of a case share their first tokens (system prompt + scenario); only the passages and the
question differ. :func:`greedy_generate` therefore

1. finds the longest common token prefix of the batch and runs it through the model **once** (batch 1);
2. repeats that KV cache across the batch (``DynamicCache.batch_repeat_interleave``);
3. runs the differing suffixes together, **left-padded inside the sequence**: a row reads
   ``[prefix][pad … pad][suffix]`` with the pads masked out of attention and explicit ``position_ids`` that
   continue from the prefix, so every real token sits at the position it would have without padding;
4. decodes greedily, dropping finished rows from the batch (and their cache rows) as they hit EOS.

Tokens are identical to per-prompt greedy decoding up to floating-point summation order (padding changes
the shapes of the matrix products); the test suite and ``benchmarks/bench_answer.py`` check equality.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DecodeStats:
    """What one :func:`greedy_generate` call did (for usage reports and the benchmark)."""

    batch: int = 0
    shared_prefix_tokens: int = 0
    prompt_tokens: list[int] = field(default_factory=list)
    forward_calls: int = 0


def common_prefix_length(seqs: Sequence[Sequence[int]]) -> int:
    if not seqs:
        return 0
    first, n = seqs[0], min(len(s) for s in seqs)
    for i in range(n):
        tok = first[i]
        if any(s[i] != tok for s in seqs[1:]):
            return i
    return n


def supports_prefix_decoding(model: Any) -> bool:
    """Our loop needs a decoder-only model whose forward takes ``position_ids`` and a KV cache."""
    if getattr(model.config, "is_encoder_decoder", False):
        return False
    params = set(inspect.signature(model.forward).parameters)
    return {"position_ids", "past_key_values", "attention_mask"} <= params


def _forward(model: Any, keep_last: bool, **kwargs: Any) -> Any:
    if keep_last and _accepts_logits_to_keep(model):
        kwargs["logits_to_keep"] = 1  # only the last position's logits: skips a (tokens × vocab) product
    return model(**kwargs, use_cache=True)


def _accepts_logits_to_keep(model: Any) -> bool:
    cached = getattr(model, "_clinrag_logits_to_keep", None)
    if cached is None:
        cached = "logits_to_keep" in inspect.signature(model.forward).parameters
        try:
            model._clinrag_logits_to_keep = cached
        except AttributeError:
            pass
    return bool(cached)


def greedy_generate(model: Any, prompts: Sequence[Sequence[int]], *, max_new_tokens: int | Sequence[int],
                    eos_ids: Iterable[int],
                    pad_id: int, share_prefix: bool = True, min_shared: int = 8,
                    stats: DecodeStats | None = None) -> list[list[int]]:
    """Greedy continuations (EOS excluded) of each prompt, decoded as one batch.

    ``max_new_tokens`` is one limit for all rows or one per row (a server batches requests with different
    limits). ``share_prefix=False`` (or a shared prefix shorter than ``min_shared`` tokens) runs the whole
    prompts left-padded in one batch without the prefix step.
    """
    import torch
    from transformers import DynamicCache

    stats = stats if stats is not None else DecodeStats()
    bsz = len(prompts)
    stats.batch, stats.prompt_tokens = bsz, [len(p) for p in prompts]
    if bsz == 0:
        return []
    if any(len(p) == 0 for p in prompts):
        raise ValueError("empty prompt")
    eos = set(int(e) for e in eos_ids)
    device = model.device
    results: list[list[int]] = [[] for _ in range(bsz)]
    limits = ([int(max_new_tokens)] * bsz if isinstance(max_new_tokens, int) else [int(n) for n in max_new_tokens])
    if len(limits) != bsz:
        raise ValueError(f"{len(limits)} max_new_tokens for {bsz} prompts")
    if max(limits) <= 0:
        return results

    shared = common_prefix_length(prompts) if share_prefix and bsz > 1 else 0
    shared = min(shared, min(len(p) for p in prompts) - 1)  # every row keeps ≥ 1 suffix token
    if shared < min_shared:
        shared = 0
    stats.shared_prefix_tokens = shared

    with torch.inference_mode():
        cache = DynamicCache(config=model.config)
        if shared:
            prefix = torch.tensor([list(prompts[0][:shared])], dtype=torch.long, device=device)
            _forward(model, True, input_ids=prefix, past_key_values=cache)
            stats.forward_calls += 1
            cache.batch_repeat_interleave(bsz)

        suffixes = [list(p[shared:]) for p in prompts]
        width = max(len(s) for s in suffixes)
        input_ids = torch.full((bsz, width), pad_id, dtype=torch.long, device=device)
        mask = torch.zeros((bsz, shared + width), dtype=torch.long, device=device)
        mask[:, :shared] = 1
        for i, s in enumerate(suffixes):
            input_ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long, device=device)
            mask[i, shared + width - len(s):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
        out = _forward(model, True, input_ids=input_ids, attention_mask=mask, position_ids=positions,
                       past_key_values=cache)
        stats.forward_calls += 1
        next_pos = positions[:, -1] + 1
        active = torch.arange(bsz, device=device)

        while True:
            tokens = out.logits[:, -1, :].argmax(dim=-1)
            keep = []
            for row, (b, t) in enumerate(zip(active.tolist(), tokens.tolist())):
                if t in eos or len(results[b]) >= limits[b]:
                    continue
                results[b].append(t)
                if len(results[b]) < limits[b]:
                    keep.append(row)
            if not keep:
                break
            if len(keep) < active.shape[0]:
                idx = torch.tensor(keep, dtype=torch.long, device=device)
                cache.batch_select_indices(idx)
                mask, tokens, next_pos, active = mask[idx], tokens[idx], next_pos[idx], active[idx]
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            out = _forward(model, False, input_ids=tokens[:, None], attention_mask=mask,
                           position_ids=next_pos[:, None], past_key_values=cache)
            stats.forward_calls += 1
            next_pos = next_pos + 1
    return results
