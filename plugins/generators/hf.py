"""``hf``: any transformers causal LM (hub id, local folder or ``.gguf`` file), optionally with a PEFT adapter.

Prompts go through the tokenizer's chat template (ChatML for Qwen2.5 and SmolLM2). Decoding is greedy (the
server's requests may sample: :meth:`HFChatLLM.generate_ids` takes per-row samplers and a token callback), and
each row stops at its own end of reply (EOS), not at the token limit. All sub-questions of a case **and the case
summary** are answered in one batched decode that computes the shared system + scenario prefix once
(:mod:`clinrag.plugins.generators.decoding`); the graph then skips its separate summary call
(:class:`~clinrag.plugins.generators.base.SummarizesWithAnswers`).

On CPU the weights run in :data:`clinrag.core.defaults.CPU_ANSWER_DTYPE` where the processor computes bfloat16
natively: ``bfloat16-weights``, the weights in bfloat16 and the activations in float32
(:mod:`clinrag.core.models.weight_only`), measured to keep the answers; elsewhere, or with ``dtype=float32``, the
exact float32 path. ``dtype=bfloat16`` runs the whole model in bfloat16. The bfloat16 kinds map a cached bfloat16
copy (:func:`clinrag.core.models.precision.resolve_inference_dtype`).

The model is loaded on first use and cached per process by its options, so the answering generator and a
query-translation LLM naming the same model share one copy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from clinrag.core.defaults import DEFAULT_MODEL, MAX_NEW_TOKENS
from clinrag.core.models.loading import load_causal_lm, resolve_device
from clinrag.core.models.precision import dtype_name, resolve_inference_dtype
from clinrag.core.prompts import summary_messages
from clinrag.core.types import Generation

from .base import AnswerRequest, Message
from .decoding import DecodeStats, generate_batch, supports_prefix_decoding
from .llm import LLMGenerator, split_usage

if TYPE_CHECKING:
    from clinrag.core.cases import Case

    from .sampling import Sampler

_LOADED: dict[tuple[Any, ...], tuple[Any, Any]] = {}
_LOAD_LOCK = threading.Lock()


def _load_cached(key: tuple[Any, ...], **kwargs: Any) -> tuple[Any, Any]:
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = load_causal_lm(**kwargs)
        return _LOADED[key]


class HFChatLLM:
    """A :class:`~clinrag.plugins.generators.base.ChatLLM` over a transformers model, greedy, batched."""

    def __init__(self, model: str = DEFAULT_MODEL, *, adapter: str | None = None, device: str | None = None,
                 dtype: Any = None, trust_remote_code: bool = False, max_new_tokens: int = MAX_NEW_TOKENS,
                 prefix_cache: bool = True) -> None:
        self.model_spec, self.adapter = str(model), (str(adapter) if adapter else None)
        self.device, self.dtype, self.trust_remote_code = device, dtype, bool(trust_remote_code)
        self.max_new_tokens, self.prefix_cache = int(max_new_tokens), bool(prefix_cache)
        self._lock = threading.Lock()  # the graph may call summarize and translate from two threads
        self.last_stats: DecodeStats | None = None
        self._eos_ids: set[int] | None = None
        self.last_token_ids: list[list[int]] = []  # the latest chat() call's generated ids (tests, benchmark)

    # -- lazy model ---------------------------------------------------------------------------------
    def _components(self) -> tuple[Any, Any]:
        device = resolve_device(self.device)
        dtype = resolve_inference_dtype(self.dtype, device)
        key = (self.model_spec, self.adapter, device, str(dtype), self.trust_remote_code)
        return _load_cached(key, spec=self.model_spec, adapter=self.adapter, device=device, dtype=dtype,
                            trust_remote_code=self.trust_remote_code, merge_adapter=True)

    @property
    def model(self) -> Any:
        return self._components()[0]

    @property
    def tokenizer(self) -> Any:
        return self._components()[1]

    def eos_ids(self) -> set[int]:
        """The ids that end a reply: the tokenizer's EOS, the generation config's, and ChatML's ``<|im_end|>``."""
        if self._eos_ids is not None:
            return self._eos_ids
        model, tok = self._components()
        ids: set[int] = set()
        cfg = model.generation_config.eos_token_id
        ids.update(cfg if isinstance(cfg, list) else ([cfg] if cfg is not None else []))
        if tok.eos_token_id is not None:
            ids.add(int(tok.eos_token_id))
        im_end = tok.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tok.get_vocab() else None
        if im_end is not None:
            ids.add(int(im_end))
        self._eos_ids = ids  # get_vocab() builds a dict of the whole vocabulary: do it once
        return ids

    # -- prompts --------------------------------------------------------------------------------------
    def encode(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of the chat-templated conversation, ending with the assistant turn's opening."""
        tok = self.tokenizer
        text = tok.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        return list(tok(text, add_special_tokens=False)["input_ids"])

    # -- generation -----------------------------------------------------------------------------------
    def generate_ids(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int | Sequence[int] | None = None,
                     prefix_cache: bool | None = None, samplers: Sequence[Sampler | None] | None = None,
                     on_token: Callable[[int, int], bool] | None = None) -> tuple[list[list[int]], DecodeStats]:
        """Continuations (EOS excluded); ``max_new_tokens`` is one limit or one per prompt.

        Greedy unless ``samplers`` gives a row a sampler; ``on_token(row, token)`` sees every token and ends its
        row by returning True (see :func:`~clinrag.plugins.generators.decoding.generate_batch`).
        """
        model, tok = self._components()
        n_new: int | list[int] = (int(max_new_tokens or self.max_new_tokens) if not isinstance(max_new_tokens, Sequence)
                                  else [int(n) for n in max_new_tokens])
        share = self.prefix_cache if prefix_cache is None else prefix_cache
        stats = DecodeStats()
        with self._lock:
            if supports_prefix_decoding(model):
                outs = generate_batch(model, prompts, max_new_tokens=n_new, eos_ids=self.eos_ids(),
                                      pad_id=int(tok.pad_token_id), samplers=samplers, on_token=on_token,
                                      share_prefix=share, stats=stats)
            else:  # e.g. encoder-decoder models: plain left-padded batch through generate()
                if samplers is not None and any(s is not None for s in samplers):
                    raise ValueError(f"{self.model_spec}: sampling needs a decoder-only model; use temperature 0")
                outs = self._generate_plain(prompts, n_new, stats)
                for row, out in enumerate(outs):  # the same callback contract, after the fact
                    for i, t in enumerate(out if on_token is not None else ()):
                        if on_token(row, t):
                            del out[i + 1:]
                            break
        self.last_stats = stats
        return outs, stats

    def _generate_plain(self, prompts: Sequence[Sequence[int]], n_new: int | list[int],
                        stats: DecodeStats) -> list[list[int]]:
        import torch

        model, tok = self._components()
        limits = n_new if isinstance(n_new, list) else [n_new] * len(prompts)
        batch = tok.pad({"input_ids": [list(p) for p in prompts]}, padding=True, return_tensors="pt").to(model.device)
        with torch.inference_mode():
            out = model.generate(**batch, max_new_tokens=max(limits), do_sample=False, pad_token_id=tok.pad_token_id)
        eos = self.eos_ids()
        res = []
        for row, limit in zip(out[:, batch["input_ids"].shape[1]:].tolist(), limits):
            toks = []
            for t in row[:limit]:
                if t in eos:
                    break
                toks.append(t)
            res.append(toks)
        stats.batch, stats.prompt_tokens = len(prompts), [len(p) for p in prompts]
        return res

    def chat(self, conversations: Sequence[Sequence[Message]], *,
             max_new_tokens: int | Sequence[int] | None = None) -> list[Generation]:
        """One greedy reply per conversation, all in one batch; ``max_new_tokens``: one limit or one per row."""
        if not conversations:
            return []
        start = time.perf_counter()
        prompts = [self.encode(c) for c in conversations]
        outs, stats = self.generate_ids(prompts, max_new_tokens=max_new_tokens)
        self.last_token_ids = outs
        texts = [self.tokenizer.decode(o, skip_special_tokens=True) for o in outs]
        usages = split_usage(time.perf_counter() - start, [len(p) for p in prompts], [len(o) for o in outs])
        return [Generation(t, [], u) for t, u in zip(texts, usages)]


class HFGenerator(LLMGenerator):
    name: ClassVar[str] = "hf"
    description: ClassVar[str] = ("A transformers causal LM (hub id, local folder or .gguf; optional PEFT adapter), "
                                  "greedy; all sub-questions of a case and its summary in one batch sharing the "
                                  "scenario's KV cache.")

    def __init__(self, model: str = DEFAULT_MODEL, *, adapter: str | None = None, max_new_tokens: int = MAX_NEW_TOKENS,
                 summary_max_new_tokens: int | None = None, device: str | None = None, dtype: Any = None,
                 trust_remote_code: bool = False, prefix_cache: bool = True) -> None:
        super().__init__(max_new_tokens=max_new_tokens, summary_max_new_tokens=summary_max_new_tokens)
        self._llm = HFChatLLM(model, adapter=adapter, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                              max_new_tokens=max_new_tokens, prefix_cache=prefix_cache)

    def answer_with_summary(self, case: Case, requests: Sequence[AnswerRequest]) -> tuple[list[Generation],
                                                                                          Generation]:
        """The answers and the summary in one batched decode: the summary prompt shares the answers' system +
        scenario prefix, and its row costs little in a decode step that reads the weights for the answers anyway."""
        convs = [*self.answer_conversations(case, requests), summary_messages(case)]
        limits = [self.max_new_tokens] * len(requests) + [self.summary_max_new_tokens]
        gens = self.llm.chat(convs, max_new_tokens=limits)
        return self.finish_answers(requests, gens[:-1]), self.finish_summary(gens[-1])

    resolved_options: ClassVar[tuple[str, ...]] = ("dtype",)

    @classmethod
    def resolved_settings(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """``{"answer_dtype": …}`` when ``options`` make the model answer in anything but float32 on this machine
        (``bfloat16-weights``, or bfloat16 on a GPU), as :func:`resolve_inference_dtype` decides. float32 stays
        implicit: every evaluation folder written before this was recorded ran in it, and still resumes."""
        name = dtype_name(resolve_inference_dtype(options.get("dtype"), resolve_device(options.get("device"))))
        return {} if name == "float32" else {"answer_dtype": name}

    @classmethod
    def load_chat_llm(cls, model: str) -> HFChatLLM:
        """A greedy chat LLM over ``model`` (hub id, folder or .gguf), e.g. for query translation; loaded on first
        use and shared with any generator naming the same model."""
        return HFChatLLM(model)

    @property
    def llm(self) -> HFChatLLM:
        return self._llm
