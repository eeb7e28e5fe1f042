"""Choosing the next token by sampling: temperature, nucleus (top-p) and a per-request seed.

Greedy decoding stays the default everywhere: :func:`make_sampler` returns None at temperature 0, and a row
without a sampler takes ``argmax`` exactly as before (the batched decoder's token-equality guarantee is about
those rows). A sampler owns its own ``torch.Generator``, so the rows of a batch draw independently and a seeded
request draws the same tokens whichever other requests share its batch (up to the floating-point differences
batching can make in the logits themselves).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sampler:
    """Draws one token id from a row of logits: softmax(logits / temperature), cut to the top-p nucleus."""

    temperature: float
    top_p: float = 1.0
    seed: int | None = None
    _generator: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0 to sample (got {self.temperature!r})")
        if not (math.isfinite(self.top_p) and 0 <= self.top_p <= 1):
            raise ValueError(f"top_p must be in [0, 1] (got {self.top_p!r})")

    def _rng(self, device: Any) -> Any:
        import torch

        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            # Without a seed, fresh entropy: two unseeded requests must not share a stream.
            self._generator.manual_seed(self.seed if self.seed is not None else secrets.randbits(63))
        return self._generator

    def sample(self, logits: Any) -> int:
        """One token id from a 1-D logits tensor."""
        import torch

        rng = self._rng(logits.device)
        probs = torch.softmax(logits.float() / self.temperature, dim=-1)
        if self.top_p >= 1:
            return int(torch.multinomial(probs, 1, generator=rng))
        sorted_probs, order = probs.sort(descending=True)
        # Keep the most likely tokens until their mass reaches top_p (always at least the first one).
        keep = (sorted_probs.cumsum(-1) - sorted_probs) < self.top_p
        keep[0] = True
        choice = torch.multinomial(sorted_probs * keep, 1, generator=rng)  # multinomial renormalises
        return int(order[choice])


def make_sampler(temperature: float | None, top_p: float | None = None, seed: int | None = None) -> Sampler | None:
    """A :class:`Sampler`, or None (greedy) when ``temperature`` is 0 or unset."""
    if not temperature:
        return None
    return Sampler(float(temperature), 1.0 if top_p is None else float(top_p), seed)
