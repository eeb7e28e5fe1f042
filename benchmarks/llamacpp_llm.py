"""llama.cpp as the benchmark's reference: the same GGUF, parallel sequences in one batch, prompt prefix reused.

Benchmark-only (``pip install -e .[bench]`` builds ``llama-cpp-python`` from source, so ggml is compiled for this
CPU). llama-cpp-python does not ship ``llama-server``, so this drives its low-level API the way ``llama-server
--parallel N --cache-prompt`` decodes: every sequence of a chat call is a slot, all slots' tokens go through one
``llama_decode`` per step (prompt tokens packed into batches of ``n_batch``), greedy. It is, if anything, kinder to
llama.cpp than the server: the batch's common token prefix (system prompt + scenario) is evaluated once and copied
to every sequence (``llama_memory_seq_cp``), where the server's per-slot cache only reuses what that slot held
before. Prompts are the clinrag tokenizer's ids (identical to the ``hf`` side), outputs are decoded by it too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from clinrag.core.defaults import MAX_NEW_TOKENS
from clinrag.core.types import Generation
from clinrag.plugins.generators.decoding import common_prefix_length
from clinrag.plugins.generators.llm import LLMGenerator, split_usage


@dataclass
class LlamaStats:
    batch: int = 0
    shared_prefix_tokens: int = 0
    prompt_tokens: list[int] = field(default_factory=list)
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    decode_steps: int = 0


class LlamaCppParallelLLM:
    """A clinrag ``ChatLLM`` over llama.cpp (in process): each ``chat`` call decodes its conversations together."""

    def __init__(self, gguf: str | Path, tokenizer: Any, *, n_threads: int, n_seq_max: int = 8, n_ctx: int = 32768,
                 n_batch: int = 2048, max_new_tokens: int = MAX_NEW_TOKENS, share_prefix: bool = True) -> None:
        import llama_cpp as lc

        self.lc, self.tokenizer = lc, tokenizer
        self.max_new_tokens, self.share_prefix, self.n_batch = int(max_new_tokens), share_prefix, int(n_batch)
        self.n_seq_max = int(n_seq_max)
        lc.llama_backend_init()
        start = time.perf_counter()
        mparams = lc.llama_model_default_params()
        self.model = lc.llama_model_load_from_file(str(gguf).encode(), mparams)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {gguf}")
        cparams = lc.llama_context_default_params()
        cparams.n_ctx, cparams.n_batch, cparams.n_ubatch = n_ctx, n_batch, min(512, n_batch)
        cparams.n_seq_max, cparams.n_threads, cparams.n_threads_batch = n_seq_max, n_threads, n_threads
        cparams.kv_unified = True  # one KV buffer shared by all sequences, as llama-server uses with --parallel
        self.ctx = lc.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a context")
        self.load_seconds = time.perf_counter() - start
        self.vocab = lc.llama_model_get_vocab(self.model)
        self.n_vocab = lc.llama_vocab_n_tokens(self.vocab)
        self.mem = lc.llama_get_memory(self.ctx)
        self.batch = lc.llama_batch_init(n_batch, 0, n_seq_max)
        self.last_stats = LlamaStats()
        self.last_token_ids: list[list[int]] = []

    def encode(self, messages: Sequence[dict[str, str]]) -> list[int]:
        text = self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- one llama_decode over (token, position, sequence, wants logits) entries ---------------------------------
    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> list[int]:
        b = self.batch
        for i, (tok, pos, seq, logits) in enumerate(entries):
            b.token[i], b.pos[i], b.n_seq_id[i] = tok, pos, 1
            b.seq_id[i][0], b.logits[i] = seq, 1 if logits else 0
        b.n_tokens = len(entries)
        rc = self.lc.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        return [i for i, e in enumerate(entries) if e[3]]

    def _argmax(self, index: int) -> int:
        import numpy as np

        ptr = self.lc.llama_get_logits_ith(self.ctx, index)
        return int(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).argmax())

    def generate_ids(self, prompts: Sequence[Sequence[int]], max_new_tokens: int | Sequence[int]) -> list[list[int]]:
        n = len(prompts)
        if n > self.n_seq_max:
            raise ValueError(f"{n} sequences > n_seq_max {self.n_seq_max}")
        limits = [int(max_new_tokens)] * n if isinstance(max_new_tokens, int) else [int(x) for x in max_new_tokens]
        stats = LlamaStats(batch=n, prompt_tokens=[len(p) for p in prompts])
        self.lc.llama_memory_clear(self.mem, True)
        t0 = time.perf_counter()
        shared = common_prefix_length(prompts) if self.share_prefix and n > 1 else 0
        shared = max(0, min(shared, min(len(p) for p in prompts) - 1))
        stats.shared_prefix_tokens = shared
        pending: list[tuple[int, int, int, bool]] = [(t, i, 0, False) for i, t in enumerate(prompts[0][:shared])]
        for start in range(0, len(pending), self.n_batch):
            self._decode(pending[start:start + self.n_batch])
        for s in range(1, n):
            self.lc.llama_memory_seq_cp(self.mem, 0, s, -1, -1)
        entries = [(t, shared + j, s, j == len(p) - shared - 1) for s, p in enumerate(prompts)
                   for j, t in enumerate(p[shared:])]
        next_tok: dict[int, int] = {}
        for start in range(0, len(entries), self.n_batch):
            chunk = entries[start:start + self.n_batch]
            for idx in self._decode(chunk):
                next_tok[chunk[idx][2]] = self._argmax(idx)
        t1 = time.perf_counter()
        outs: list[list[int]] = [[] for _ in range(n)]
        pos = [len(p) for p in prompts]
        active = list(range(n))
        while True:
            step = []
            for s in active:
                tok = next_tok[s]
                if self.lc.llama_vocab_is_eog(self.vocab, tok) or len(outs[s]) >= limits[s]:
                    continue
                outs[s].append(tok)
                if len(outs[s]) < limits[s]:
                    step.append(s)
            active = step
            if not active:
                break
            idxs = self._decode([(outs[s][-1], pos[s], s, True) for s in active])
            stats.decode_steps += 1
            for s, idx in zip(active, idxs):
                pos[s] += 1
                next_tok[s] = self._argmax(idx)
        stats.prefill_seconds, stats.decode_seconds = t1 - t0, time.perf_counter() - t1
        self.last_stats, self.last_token_ids = stats, outs
        return outs

    def chat(self, conversations: Sequence[Sequence[dict[str, str]]], *,
             max_new_tokens: int | Sequence[int] | None = None) -> list[Generation]:
        if not conversations:
            return []
        start = time.perf_counter()
        prompts = [self.encode(c) for c in conversations]
        outs = self.generate_ids(prompts, self.max_new_tokens if max_new_tokens is None else max_new_tokens)
        texts = [self.tokenizer.decode(o, skip_special_tokens=True) for o in outs]
        usages = split_usage(time.perf_counter() - start, [len(p) for p in prompts], [len(o) for o in outs])
        return [Generation(t, [], u) for t, u in zip(texts, usages)]

    def close(self) -> None:
        self.lc.llama_batch_free(self.batch)
        self.lc.llama_free(self.ctx)
        self.lc.llama_model_free(self.model)


class LlamaCppGenerator(LLMGenerator):
    """What ``--generator openai`` against ``llama-server --parallel N`` does: the summary is one call (run beside
    query translation), the case's answers one concurrent batch."""

    name: ClassVar[str] = "llamacpp"
    description: ClassVar[str] = "llama.cpp in process (benchmark reference)"

    def __init__(self, llm: LlamaCppParallelLLM, *, max_new_tokens: int = MAX_NEW_TOKENS) -> None:
        super().__init__(max_new_tokens=max_new_tokens)
        self._llm = llm

    @property
    def llm(self) -> LlamaCppParallelLLM:
        return self._llm
