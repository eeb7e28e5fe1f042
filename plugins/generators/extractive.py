"""``extractive``: the no-LLM answerer. Picks the best-supported sentences from the retrieved passages.

Each sentence of the retrieved passages is scored by cosine similarity to the (sub-)question with the same
embedder the index uses (shared with the retriever, see :class:`~clinrag.plugins.generators.base.SharesEmbedder`;
lexical overlap with ``embedder=None``), plus a small bonus for the rank of its
passage. The top sentences, in passage order, form the answer and their passage ids its citations. For a
multiple-choice question the option most similar to the supporting sentences is chosen.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from clinrag.core.defaults import DEFAULT_EMBEDDER
from clinrag.core.text import content_words, sentences, truncate_words
from clinrag.core.types import Generation, Usage

from .base import AnswerRequest, ChatLLM

if TYPE_CHECKING:
    from clinrag.core.cases import Case

_NUMBERISH = re.compile(r"\d")


class ExtractiveGenerator:
    name: ClassVar[str] = "extractive"
    description: ClassVar[str] = ("No LLM: answers with the retrieved sentences most similar to the question, "
                                  "citing their passages. Fast, deterministic, never invents text.")

    def __init__(self, embedder: Any = DEFAULT_EMBEDDER, *, max_sentences: int = 2, max_words: int = 90,
                 rank_bonus: float = 0.05) -> None:
        self._embedder_spec = embedder
        # Only a default embedder gives way to the retriever's: one the user named (or None) is kept.
        self._embedder_chosen = embedder is not DEFAULT_EMBEDDER
        self.max_sentences, self.max_words, self.rank_bonus = max_sentences, max_words, rank_bonus

    @property
    def llm(self) -> ChatLLM | None:
        return None

    def share_embedder(self, embedder: Any) -> None:
        """Score sentences with the retriever's (already loaded) embedder, unless one was given explicitly."""
        if not self._embedder_chosen:
            self._embedder_spec = embedder

    @property
    def embedder(self) -> Any:
        spec = self._embedder_spec
        if isinstance(spec, str):
            from clinrag.retrieval.embedder import SentenceTransformerEmbedder

            self._embedder_spec = spec = SentenceTransformerEmbedder(spec)
        return spec

    # -- scoring ---------------------------------------------------------------------------------
    def _similarities(self, questions: list[str], sents: list[str]) -> np.ndarray:
        if self.embedder is not None and sents:
            vecs = self.embedder.encode_queries(questions + sents)  # one encode call per case
            return vecs[: len(questions)] @ vecs[len(questions):].T
        qsets = [set(content_words(q)) for q in questions]
        ssets = [set(content_words(s)) for s in sents]
        sim = np.zeros((len(questions), len(sents)), dtype=np.float32)
        for i, q in enumerate(qsets):
            for j, s in enumerate(ssets):
                sim[i, j] = len(q & s) / (len(q) ** 0.5 * len(s) ** 0.5) if q and s else 0.0
        return sim

    def answer(self, case: Case, requests: Sequence[AnswerRequest]) -> list[Generation]:
        start = time.perf_counter()
        # Pool every candidate sentence of the case so one encode call serves all sub-questions.
        pool: list[str] = []
        owners: list[list[tuple[int, str, int]]] = []  # per request: (pool index, passage id, passage rank)
        index_of: dict[str, int] = {}
        for req in requests:
            mine = []
            for hit in req.hits:
                for sent in sentences(hit.passage.text):
                    if len(sent.split()) < 4:
                        continue
                    if sent not in index_of:
                        index_of[sent] = len(pool)
                        pool.append(sent)
                    mine.append((index_of[sent], hit.passage.id, hit.rank))
            owners.append(mine)
        questions = [r.sub_question.text for r in requests]
        option_texts = [f"{k}. {v}" for r in requests for k, v in (r.options or {}).items()]
        sims = self._similarities(questions + option_texts, pool)
        out = []
        opt_row = len(questions)
        for qi, (req, mine) in enumerate(zip(requests, owners)):
            if not mine:
                out.append(Generation("The retrieved passages do not contain an answer to this question."))
                opt_row += len(req.options or {})
                continue
            scored = sorted(((float(sims[qi, pi]) + self.rank_bonus / (1 + rank), pi, pid) for pi, pid, rank in mine),
                            reverse=True)
            chosen, seen = [], set()
            for score, pi, pid in scored:
                if pi in seen:
                    continue
                seen.add(pi)
                chosen.append((pi, pid))
                if len(chosen) >= self.max_sentences:
                    break
            text = " ".join(pool[pi] for pi, _ in chosen)
            text = truncate_words(text, self.max_words)
            cited = list(dict.fromkeys(pid for _, pid in chosen))
            if req.options:
                keys = list(req.options)
                rows = sims[opt_row: opt_row + len(keys)]
                support = [pi for pi, _ in chosen]
                best = keys[int(np.argmax(rows[:, support].mean(axis=1)))]
                text = f"{best}. {req.options[best]} — {text}"
                opt_row += len(keys)
            out.append(Generation(f"{text} " + " ".join(f"[{c}]" for c in cited), cited))
        elapsed = time.perf_counter() - start
        for g in out:
            g.usage = Usage(seconds=elapsed / max(len(out), 1))
        return out

    def summarize(self, case: Case) -> Generation:
        """The scenario's opening sentence plus up to two sentences carrying findings (numbers)."""
        start = time.perf_counter()
        sents = sentences(case.clinical_scenario)
        if not sents:
            return Generation(case.clinical_scenario.strip())
        picked = [sents[0]] + [s for s in sents[1:] if _NUMBERISH.search(s)][:2]
        text = truncate_words(" ".join(picked), 70)
        return Generation(text, usage=Usage(seconds=time.perf_counter() - start))
