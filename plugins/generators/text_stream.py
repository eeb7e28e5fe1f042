"""Turning generated token ids into text as they come, and ending a reply at a stop sequence.

:class:`TextStream` is fed one token id at a time by the batched decoder and answers with the new text that is
safe to show. Two things are held back until they are settled: the end of an incomplete UTF-8 character (a
byte-level tokenizer can split one character over several tokens; the decoder renders the half as U+FFFD), and
any tail that could be the beginning of a stop sequence. A stop sequence is never part of the text: the reply
ends just before it, as with OpenAI's API, and :attr:`TextStream.stopped` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

_INCOMPLETE = "\ufffd"


class TextStream:
    """Incremental detokenisation of one reply, cut at the first of ``stop`` (strings) to appear."""

    def __init__(self, decode: Callable[[list[int]], str], stop: Sequence[str] = ()) -> None:
        self._decode = decode
        self.stop = tuple(s for s in stop if s)
        self.ids: list[int] = []
        self.text = ""  # everything decoded so far (after stopping: the final reply)
        self.stopped = False
        self._emitted = 0  # characters of ``text`` already handed out

    def _held_back(self, text: str) -> int:
        """Characters at the end of ``text`` that may still turn into a stop sequence or complete a character."""
        end = len(text)
        while end > self._emitted and text[end - 1] == _INCOMPLETE:
            end -= 1
        longest = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, end), longest, -1):
                if text.endswith(s[:n], 0, end):
                    longest = n
                    break
        return len(text) - (end - longest)

    def push(self, token_id: int) -> str:
        """Add one generated token; returns the text that became final (possibly empty)."""
        if self.stopped:
            return ""
        self.ids.append(int(token_id))
        text = self._decode(self.ids)
        hits = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        if hits:
            self.text, self.stopped = text[:min(hits)], True
            return self._take(len(self.text))
        self.text = text
        return self._take(len(text) - self._held_back(text))

    def finish(self) -> str:
        """The reply ended (EOS, token limit): whatever was held back is final now."""
        return self._take(len(self.text))

    def _take(self, upto: int) -> str:
        if upto <= self._emitted:
            return ""
        delta, self._emitted = self.text[self._emitted:upto], upto
        return delta
