"""Batched greedy decoding that computes a shared prompt prefix once.

All sub-questions of a case share their first tokens (system prompt + scenario); only the passages and the
question differ. :func:`greedy_generate` therefore

1. finds the longest common token prefix of the batch and runs it through the model **once** (batch 1);
2. runs each differing suffix on top of that cache on its own (batch 1: no FLOPs on padding, unmasked
   attention), then lays the rows out **left-padded inside the sequence**: a row of the batch cache reads
   ``[prefix][pad … pad][suffix]`` with the pads masked out of attention and explicit ``position_ids`` that
   continue from the prefix, so every real token sits at the position it would have without padding
   (``rowwise_prefill=False`` instead runs the padded suffixes as one batch: same layout, one forward);
3. decodes greedily, all rows in one forward per token, dropping finished rows (and their cache rows) as
   they hit EOS or their token limit. On CPU the linear layers of those few-row steps compute ``W @ xᵀ``
   (see :func:`small_batch_linears`): MKL's ``x @ Wᵀ`` kernel for 2–3 rows costs up to 3× the one-row
   product, which would eat most of what batching saves.

Tokens are identical to per-prompt greedy decoding up to floating-point summation order (padding changes
the shapes of the matrix products); the test suite and ``benchmarks/bench_answer.py`` check equality.

:func:`generate_batch` is the same loop for a server's mixed batches: some rows sample
(:mod:`~clinrag.plugins.generators.sampling`), and a callback sees each token and may end its row early (stop
sequences, :mod:`~clinrag.plugins.generators.text_stream`). Greedy rows in such a batch are decoded exactly as
by :func:`greedy_generate`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import hf_compat

if TYPE_CHECKING:
    from .sampling import Sampler


@dataclass
class DecodeStats:
    """What one :func:`greedy_generate` call did (for usage reports and the benchmark)."""

    batch: int = 0
    shared_prefix_tokens: int = 0
    prompt_tokens: list[int] = field(default_factory=list)
    forward_calls: int = 0
    prefill_seconds: float = 0.0  # shared prefix + padded suffixes
    decode_seconds: float = 0.0  # one token per step for the rows still running


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
    return hf_compat.takes_kv_inputs(model)


def _forward(model: Any, keep_last: bool, cache: Any, **kwargs: Any) -> Any:
    kwargs[hf_compat.cache_parameter(model)] = cache
    if keep_last and hf_compat.takes_logits_to_keep(model):
        kwargs["logits_to_keep"] = 1  # only the last position's logits: skips a (tokens × vocab) product
    return model(**kwargs, use_cache=True)


# Rows for which W @ xᵀ beat x @ Wᵀ on SmolLM2's layer shapes (AVX-512 MKL, 1 and 2 threads); at 8 rows it lost.
SMALL_BATCH_ROWS = (2, 6)


def _small_batch_linear(self: Any, x: Any) -> Any:
    import torch

    rows = x.numel() // x.shape[-1]
    if SMALL_BATCH_ROWS[0] <= rows <= SMALL_BATCH_ROWS[1] and x.dtype == self.weight.dtype == torch.float32:
        # The same products through another MKL kernel; contiguous, or the next layer's view()/norm slows down.
        y = torch.mm(self.weight, x.reshape(rows, x.shape[-1]).T).T.contiguous()
        if self.bias is not None:
            y += self.bias
        return y.view(*x.shape[:-1], self.weight.shape[0])
    return torch.nn.functional.linear(x, self.weight, self.bias)


@contextmanager
def small_batch_linears(model: Any) -> Iterator[int]:
    """While active, the model's float32 CPU ``nn.Linear`` layers compute 2–6-row inputs as ``W @ xᵀ``.

    A batched decode step feeds every linear layer a few rows. MKL's ``x @ Wᵀ`` kernel for 2–3 rows costs 1.5–3×
    the one-row product (SmolLM2's 49,152×576 head: 7.6 ms for one row, 16 for two, 26 for three), so a batch of
    three cost twice a single-row step and batching saved little. ``W @ xᵀ`` reads the weights once at about the
    one-row cost: a 3-row SmolLM2 step fell from ~100 to ~62 ms (one row: ~48 ms). Only the order of summation
    changes. Re-entrant and thread-safe (a count on the model); yields how many layers are affected. CUDA, bf16
    and quantised layers are left alone.
    """
    import torch

    layers = [m for m in model.modules() if type(m) is torch.nn.Linear and m.weight.device.type == "cpu"
              and m.weight.dtype == torch.float32] if isinstance(model, torch.nn.Module) else []
    if not layers:
        yield 0
        return
    with hf_compat.forward_overridden(model, layers, _small_batch_linear):
        yield len(layers)


def _prefill_padded(model: Any, cache: Any, shared: int, suffixes: list[list[int]], pad_id: int,
                    stats: DecodeStats) -> tuple[Any, Any, Any]:
    """All suffixes in one forward, left-padded after the (repeated) prefix, pads masked out."""
    import torch

    device, bsz = model.device, len(suffixes)
    if shared:
        hf_compat.repeat_rows(cache, bsz)
    width = max(len(s) for s in suffixes)
    input_ids = torch.full((bsz, width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((bsz, shared + width), dtype=torch.long, device=device)
    mask[:, :shared] = 1
    for i, s in enumerate(suffixes):
        input_ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long, device=device)
        mask[i, shared + width - len(s):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
    out = _forward(model, True, cache, input_ids=input_ids, attention_mask=mask, position_ids=positions)
    stats.forward_calls += 1
    return out.logits[:, -1, :], mask, positions[:, -1] + 1


def _prefill_rowwise(model: Any, cache: Any, shared: int, suffixes: list[list[int]],
                     stats: DecodeStats) -> tuple[Any, Any, Any]:
    """Each suffix alone (batch 1, no padding) on top of the prefix cache, its keys and values copied straight
    into one padded batch cache ``[prefix][zeros][suffix_i]`` per layer (zeros masked): the padded layout.

    Copying each row out as soon as it is computed keeps one row's cache alive besides the batch's, not every
    row's until the end (a 7-row case on the 0.5B stand-in: ~190 MB less at the peak)."""
    import torch

    device, bsz = model.device, len(suffixes)
    width = max(len(s) for s in suffixes)
    batch_kv: list[list[Any]] = []  # per layer [keys, values], allocated once the first row shows their shapes
    logits = []
    for i, s in enumerate(suffixes):
        ids = torch.tensor([s], dtype=torch.long, device=device)
        pos = torch.arange(shared, shared + len(s), device=device)[None]
        out = _forward(model, True, cache, input_ids=ids, position_ids=pos)
        stats.forward_calls += 1
        logits.append(out.logits[:, -1, :])
        del out  # its hidden states and logits, before the next row's forward
        kv = hf_compat.layer_kv(cache)
        if not batch_kv:
            for pair in kv:
                tensors = []
                for t in pair:
                    full = t.new_zeros((bsz, t.shape[1], shared + width, t.shape[3]))
                    full[:, :, :shared] = t[:, :, :shared]
                    tensors.append(full)
                batch_kv.append(tensors)
        for li, pair in enumerate(kv):
            for kind, t in enumerate(pair):
                batch_kv[li][kind][i, :, shared + width - len(s):] = t[0, :, shared:]
        # back to the prefix alone for the next row (a copy: a view would keep this row's whole cache alive)
        hf_compat.set_layer_kv(cache, [(k[:, :, :shared].clone(), v[:, :, :shared].clone()) for k, v in kv])
        del kv
    hf_compat.set_layer_kv(cache, [tuple(pair) for pair in batch_kv])
    mask = torch.zeros((bsz, shared + width), dtype=torch.long, device=device)
    mask[:, :shared] = 1
    for i, s in enumerate(suffixes):
        mask[i, shared + width - len(s):] = 1
    next_pos = torch.tensor([shared + len(s) for s in suffixes], dtype=torch.long, device=device)
    return torch.cat(logits, dim=0), mask, next_pos


def greedy_generate(model: Any, prompts: Sequence[Sequence[int]], *, max_new_tokens: int | Sequence[int],
                    eos_ids: Iterable[int],
                    pad_id: int, share_prefix: bool = True, min_shared: int = 8, rowwise_prefill: bool = True,
                    stats: DecodeStats | None = None) -> list[list[int]]:
    """Greedy continuations (EOS excluded) of each prompt, decoded as one batch.

    ``max_new_tokens`` is one limit for all rows or one per row (a server batches requests with different
    limits). ``share_prefix=False`` (or a shared prefix shorter than ``min_shared`` tokens) runs the whole
    prompts left-padded in one batch without the prefix step.
    """
    return generate_batch(model, prompts, max_new_tokens=max_new_tokens, eos_ids=eos_ids, pad_id=pad_id,
                          share_prefix=share_prefix, min_shared=min_shared, rowwise_prefill=rowwise_prefill,
                          stats=stats)


def generate_batch(model: Any, prompts: Sequence[Sequence[int]], *, max_new_tokens: int | Sequence[int],
                   eos_ids: Iterable[int], pad_id: int, samplers: Sequence[Sampler | None] | None = None,
                   on_token: Callable[[int, int], bool] | None = None, share_prefix: bool = True,
                   min_shared: int = 8, rowwise_prefill: bool = True,
                   stats: DecodeStats | None = None) -> list[list[int]]:
    """:func:`greedy_generate`, where a row may sample and a caller may watch and stop rows as tokens come.

    ``samplers[i]`` (a :class:`~clinrag.plugins.generators.sampling.Sampler`) draws row ``i``'s tokens; a row
    whose sampler is None takes the argmax, exactly as :func:`greedy_generate`. ``on_token(i, token)`` is called
    for every token appended to row ``i``; returning True ends that row there (a stop sequence, a client gone).
    """
    import torch

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
    if samplers is not None and len(samplers) != bsz:
        raise ValueError(f"{len(samplers)} samplers for {bsz} prompts")
    if max(limits) <= 0:
        return results

    shared = common_prefix_length(prompts) if share_prefix and bsz > 1 else 0
    shared = min(shared, min(len(p) for p in prompts) - 1)  # every row keeps ≥ 1 suffix token
    if shared < min_shared:
        shared = 0
    stats.shared_prefix_tokens = shared

    t0 = time.perf_counter()
    with torch.inference_mode(), small_batch_linears(model):
        cache = hf_compat.new_cache(model)
        if shared:
            prefix = torch.tensor([list(prompts[0][:shared])], dtype=torch.long, device=device)
            _forward(model, True, cache, input_ids=prefix)
            stats.forward_calls += 1
        suffixes = [list(p[shared:]) for p in prompts]
        if rowwise_prefill and hf_compat.kv_editable(cache):
            logits, mask, next_pos = _prefill_rowwise(model, cache, shared, suffixes, stats)
        else:
            logits, mask, next_pos = _prefill_padded(model, cache, shared, suffixes, pad_id, stats)
        active = torch.arange(bsz, device=device)
        padded = bool((mask == 0).any())  # no padding: let attention take its unmasked fast path
        t1 = time.perf_counter()
        stats.prefill_seconds = t1 - t0

        while True:
            tokens = logits.argmax(dim=-1)
            if samplers is not None:
                for row, b in enumerate(active.tolist()):
                    if samplers[b] is not None:
                        tokens[row] = samplers[b].sample(logits[row])
            keep = []
            for row, (b, t) in enumerate(zip(active.tolist(), tokens.tolist())):
                if t in eos or len(results[b]) >= limits[b]:
                    continue
                results[b].append(t)
                stop = on_token(b, t) if on_token is not None else False
                if not stop and len(results[b]) < limits[b]:
                    keep.append(row)
            if not keep:
                break
            if len(keep) < active.shape[0]:
                idx = torch.tensor(keep, dtype=torch.long, device=device)
                hf_compat.select_rows(cache, idx)
                mask, tokens, next_pos, active = mask[idx], tokens[idx], next_pos[idx], active[idx]
                padded = bool((mask == 0).any())
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            logits = _forward(model, False, cache, input_ids=tokens[:, None], attention_mask=mask if padded else None,
                              position_ids=next_pos[:, None]).logits[:, -1, :]
            stats.forward_calls += 1
            next_pos = next_pos + 1
    stats.decode_seconds = time.perf_counter() - t1
    return results
