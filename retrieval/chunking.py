"""Token-aware chunking with overlap, for documents longer than the embedder can read.

Windows are counted in the embedder's own tokens (a 256-token model truncates anything longer, silently losing
the rest) and cut on the tokenizer's character offsets, so a chunk's text is an exact substring of its document.

Ids are derived from the document id, so re-indexing the same corpus gives the same ids: a document that fits
in one window keeps its id unchanged (gold evidence ids stay valid); a longer one becomes ``{id}#0``, ``{id}#1``, …
with ``doc_id``, ``chunk`` and ``char_start`` in its metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from clinrag.core.errors import ClinragError
from clinrag.core.types import Passage

CHUNK_SEP = "#"


@dataclass(frozen=True)
class ChunkSpec:
    """``tokens`` per window (0 = no chunking) and ``overlap`` tokens shared by neighbouring windows."""

    tokens: int = 0
    overlap: int = 0

    def __post_init__(self) -> None:
        if self.tokens < 0 or self.overlap < 0:
            raise ClinragError(f"chunk sizes must be >= 0 (got tokens={self.tokens}, overlap={self.overlap})")
        if self.tokens and self.overlap >= self.tokens:
            raise ClinragError(f"--overlap ({self.overlap}) must be smaller than --chunk-tokens ({self.tokens})")

    @property
    def enabled(self) -> bool:
        return self.tokens > 0

    def as_dict(self) -> dict[str, int]:
        return {"tokens": self.tokens, "overlap": self.overlap}


def chunk_id(doc_id: str, index: int) -> str:
    return f"{doc_id}{CHUNK_SEP}{index}"


def _windows(n_tokens: int, spec: ChunkSpec) -> Iterator[tuple[int, int]]:
    step = spec.tokens - spec.overlap
    start = 0
    while True:
        end = min(start + spec.tokens, n_tokens)
        yield start, end
        if end >= n_tokens:
            return
        start += step


def chunk_passage(passage: Passage, tokenizer: Any, spec: ChunkSpec) -> list[Passage]:
    """``passage`` itself when it fits in ``spec.tokens`` tokens, else its overlapping windows."""
    if not spec.enabled:
        return [passage]
    enc = tokenizer(passage.text, add_special_tokens=False, return_offsets_mapping=True, truncation=False,
                    verbose=False)
    offsets = enc["offset_mapping"]
    if len(offsets) <= spec.tokens:
        return [passage]
    chunks = []
    for i, (a, b) in enumerate(_windows(len(offsets), spec)):
        start, end = offsets[a][0], offsets[b - 1][1]
        meta = {**passage.metadata, "doc_id": passage.id, "chunk": i, "char_start": start}
        chunks.append(Passage(chunk_id(passage.id, i), passage.text[start:end], passage.title, meta))
    return chunks


def chunk_passages(passages: Iterable[Passage], tokenizer: Any, spec: ChunkSpec) -> list[Passage]:
    """Every passage chunked (see :func:`chunk_passage`), in order."""
    return [c for p in passages for c in chunk_passage(p, tokenizer, spec)]
