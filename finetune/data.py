"""Cases → conversational prompt/completion examples, rendered by the inference prompts.

Every prompt here comes from :mod:`clinrag.core.prompts`, the module the LLM generators use at inference, so the
model is trained on exactly the text it will see. Two formats (:class:`~clinrag.finetune.config.DataFormat`):

``per_question`` (default) trains what the graph asks, through the graph's own code: the strategy's
sub-questions (with the scenario facts each one carries), passages retrieved with the sub-question's own queries
and fusion, and the prompt rendered by the function the ``hf`` generator sends
(:func:`clinrag.plugins.generators.llm.request_messages`); plus one example per case summary
(:func:`~clinrag.core.prompts.summary_messages`). Passages are RAFT-style: the question's gold evidence (looked up
in the index by id) mixed with ``distractors`` passages retrieved for the sub-question, in a seeded random order,
so the model learns to pick the relevant passage rather than trust position; only that fenced block differs from
the inference prompt. Without an index the prompts carry "(no passages retrieved)", exactly as the graph renders an
empty retrieval.

``whole_case``: all questions in, ``Summary: … Answers: 1. …`` out (:func:`~clinrag.core.prompts.whole_case_messages`).

Rows are ``{"prompt": [messages], "completion": [{"role": "assistant", …}], "case_id", "kind"}`` — TRL's
conversational prompt-completion format, so TRL's ``completion_only_loss`` masks the prompt.

Splits are by case (never by example), and any eval case whose normalised scenario + questions equals a training
case's is dropped from eval; augmented rows (``meta.augmented_from``) only ever go to the training side.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clinrag.core import prompts
from clinrag.core.badrows import BadRows
from clinrag.core.cases import Case, load_cases
from clinrag.core.defaults import STRATEGY
from clinrag.core.types import Hit, Passage, Query

#: Training examples are built with the strategy the graph uses by default.
DEFAULT_STRATEGY = STRATEGY

from .config import DataConfig, DataError, DataFormat


def first_words(text: str, max_words: int) -> str:
    """Whole leading sentences of ``text`` up to ``max_words`` words (at least the first sentence, itself cut at
    ``max_words`` words when longer): the answer prompt asks for at most three sentences, and long reference
    answers would spend the token budget on text the model is told not to write."""
    from clinrag.core.text import sentences

    out: list[str] = []
    count = 0
    for sent in sentences(text):
        n = len(sent.split())
        if out and count + n > max_words:
            break
        out.append(sent)
        count += n
    joined = " ".join(out) if out else text.strip()
    words = joined.split()
    return joined if len(words) <= max_words else " ".join(words[:max_words]) + " …"


def reference_answer(case: Case, i: int, *, max_words: int = 0) -> str | None:
    """The target text for question ``i``: the reference answer (its leading sentences up to ``max_words`` words
    when > 0), else ``"KEY. option text"`` from the answer key."""
    ans = case.reference("answers", i)
    if ans and str(ans).strip():
        return first_words(str(ans).strip(), max_words) if max_words > 0 else str(ans).strip()
    key = case.reference("answer_key", i)
    opts = case.reference("options", i)
    if key is not None and opts and key in opts:
        return f"{key}. {opts[key]}"
    return None


def root_id(case: Case) -> str:
    """The original case an augmented row came from (itself otherwise)."""
    return str(case.meta.get("augmented_from") or case.id)


def is_augmented(case: Case) -> bool:
    return bool(case.meta.get("augmented_from"))


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip()


def case_fingerprint(case: Case) -> str:
    """Hash of the normalised scenario + questions: equal fingerprints are duplicates whatever their ids."""
    body = _norm(case.clinical_scenario) + "\x00" + "\x00".join(_norm(q) for q in case.questions)
    return hashlib.sha256(body.encode()).hexdigest()


def _seed_for(*parts: Any) -> int:
    return int(hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()[:12], 16)


@dataclass
class PassageSource:
    """Gold passages by id and distractors by retrieval, from one index (``clinrag index build``)."""

    retriever: Any  # IndexRetriever
    _by_id: dict[str, Passage] = field(default_factory=dict)

    @classmethod
    def from_index(cls, index_dir: str, *, embedder: Any = None) -> PassageSource:
        from clinrag.retrieval.retriever import IndexRetriever

        r = IndexRetriever(index_dir, embedder=embedder)
        return cls(r, {p.id: p for p in r.index.passages})

    def gold(self, ids: Sequence[str]) -> list[Passage]:
        return [self._by_id[i] for i in ids if i in self._by_id]

    def search(self, questions: Sequence[str], k: int) -> list[list[Hit]]:
        return self.retriever.retrieve([Query(q) for q in questions], k)


@dataclass
class BuildStats:
    cases: int = 0
    examples: int = 0
    question_examples: int = 0
    summary_examples: int = 0
    whole_case_examples: int = 0
    skipped_questions: int = 0  # no reference answer
    gold_missing: int = 0  # evidence ids absent from the index
    with_passages: bool = False


def build_examples(cases: Sequence[Case], *, fmt: str = DataFormat.PER_QUESTION.value,
                   passages: PassageSource | None = None, distractors: int | None = 3, k: int = 4,
                   summaries: bool = True, seed: int = 42, strategy: Any = None,
                   max_chars_per_passage: int = 1200, max_answer_words: int = 0,
                   gold_passages: int = 0) -> tuple[list[dict[str, Any]], BuildStats]:
    """Turn cases into prompt/completion rows (see the module docstring); returns rows and counts.

    Per-question rows follow the graph's own path: ``strategy`` (default: the default strategy, with no LLM)
    turns the case into sub-questions with their facts, their queries retrieve through
    :func:`~clinrag.retrieval.fusion.retrieve_fused`, and :func:`~clinrag.plugins.generators.llm.request_messages`
    renders the prompt the ``hf`` generator would send. ``distractors=None`` turns RAFT mixing off (the ``k``
    retrieved passages, exactly as at inference).
    """
    stats = BuildStats(cases=len(cases), with_passages=passages is not None)
    rows: list[dict[str, Any]] = []
    fmt = DataFormat(fmt).value
    if fmt == DataFormat.WHOLE_CASE.value:
        for case in cases:
            answers = [reference_answer(case, i) for i in range(case.n_questions)]
            if not case.summary or any(a is None for a in answers):
                stats.skipped_questions += sum(a is None for a in answers)
                continue
            rows.append(_row(case, "whole_case", prompts.whole_case_messages(case),
                             prompts.whole_case_completion(case.summary, [a for a in answers if a])))
            stats.whole_case_examples += 1
        stats.examples = len(rows)
        return rows, stats

    from clinrag.plugins.generators.base import AnswerRequest
    from clinrag.plugins.generators.llm import request_messages
    from clinrag.plugins.strategies import LLMBudget, get_strategy
    from clinrag.retrieval.fusion import retrieve_fused

    translator = strategy if strategy is not None else get_strategy(DEFAULT_STRATEGY)
    for case in cases:
        targets = [reference_answer(case, i, max_words=max_answer_words) for i in range(case.n_questions)]
        stats.skipped_questions += sum(t is None for t in targets)
        if all(t is None for t in targets):
            continue
        # No LLM while building data: an LLM strategy falls back to the original questions, as it says in notes.
        translation = translator.translate(case, None, LLMBudget(0))
        for sq in translation.sub_questions:
            i, target = sq.question_index, targets[sq.question_index]
            if target is None:
                continue
            chosen: list[Hit] = []
            if passages is not None:
                want = k if distractors is None else max(k, distractors) + 8  # room to drop gold ids
                hits = retrieve_fused(passages.retriever, sq.queries, want, translation.fusion,
                                      rrf_k=translation.rrf_k)
                gold_ids = list(case.reference("evidence", i) or [])
                gold = passages.gold(gold_ids)
                stats.gold_missing += len(gold_ids) - len(gold)
                if gold and distractors is not None:
                    gold = gold[:gold_passages] if gold_passages > 0 else gold
                    gold_set = {p.id for p in passages.gold(gold_ids)}  # no other gold id poses as a distractor
                    mix = gold + [h.passage for h in hits if h.passage.id not in gold_set][:distractors]
                    random.Random(_seed_for(seed, case.id, sq.id)).shuffle(mix)
                    chosen = [Hit(p, 0.0, r) for r, p in enumerate(mix)]
                else:
                    chosen = hits[:k]
            request = AnswerRequest(sq, case.questions[i], tuple(chosen),
                                    case.reference("options", i) if case.options else None)
            msgs = request_messages(case, request, max_chars_per_passage=max_chars_per_passage)
            rows.append(_row(case, "question", msgs, target, question_index=i))
            stats.question_examples += 1
    if summaries:
        for case in cases:
            if case.summary and case.summary.strip():
                rows.append(_row(case, "summary", prompts.summary_messages(case), case.summary.strip()))
                stats.summary_examples += 1
    stats.examples = len(rows)
    return rows, stats


def _row(case: Case, kind: str, messages: list[dict[str, str]], target: str, *, question_index: int = -1) -> dict[str, Any]:
    return {"prompt": messages, "completion": [{"role": "assistant", "content": target}], "case_id": case.id,
            "root_id": root_id(case), "kind": kind, "question_index": question_index}


@dataclass
class SplitCases:
    train: list[Case]
    eval: list[Case]
    dropped_duplicates: int = 0
    dropped_augmented: int = 0


def split_cases(train: Sequence[Case], eval_cases: Sequence[Case] | None, *, eval_fraction: float,
                seed: int) -> SplitCases:
    """Train/eval cases, deduplicated across splits, augmented rows on the train side only.

    With ``eval_cases`` given, eval rows duplicating a training row (same fingerprint) are dropped, as are augmented
    eval rows. Otherwise original cases are held out by root id (so an original and its paraphrases stay together).
    """
    if eval_cases is not None:
        train_fp = {case_fingerprint(c) for c in train}
        train_roots = {root_id(c) for c in train}
        kept, dup, aug = [], 0, 0
        seen: set[str] = set()
        for c in eval_cases:
            fp = case_fingerprint(c)
            if is_augmented(c):
                aug += 1
            elif fp in train_fp or c.id in train_roots or fp in seen:
                dup += 1
            else:
                kept.append(c)
                seen.add(fp)
        return SplitCases(list(train), kept, dup, aug)
    roots = sorted({root_id(c) for c in train if not is_augmented(c)})
    n_eval = int(round(len(roots) * eval_fraction))
    if eval_fraction > 0 and len(roots) > 1:
        n_eval = min(max(n_eval, 1), len(roots) - 1)
    held = set(random.Random(seed).sample(roots, n_eval)) if n_eval else set()
    tr = [c for c in train if root_id(c) not in held]
    ev = [c for c in train if root_id(c) in held and not is_augmented(c)]
    # Near-identical originals under different ids (CasiMedicos has some) stay out of eval.
    train_fp = {case_fingerprint(c) for c in tr}
    kept = [c for c in ev if case_fingerprint(c) not in train_fp]
    return SplitCases(tr, kept, len(ev) - len(kept), 0)


@dataclass
class PreparedData:
    train_rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]]
    train_stats: BuildStats
    eval_stats: BuildStats
    split: SplitCases
    notes: list[str] = field(default_factory=list)


def prepare_data(cfg: DataConfig, *, seed: int = 42, embedder: Any = None) -> PreparedData:
    """Load, split and render the configured cases; raise :class:`DataError` if no completions result."""
    bad_rows = BadRows.of(cfg.on_bad_rows)
    train_cases = load_cases(cfg.train, bad_rows=bad_rows)
    eval_cases = load_cases(cfg.eval, bad_rows=bad_rows) if cfg.eval else None
    if cfg.limit:
        train_cases = train_cases[: cfg.limit]
    if eval_cases is not None and cfg.eval_limit:
        eval_cases = eval_cases[: cfg.eval_limit]
    split = split_cases(train_cases, eval_cases, eval_fraction=cfg.eval_fraction, seed=seed)
    if eval_cases is None and cfg.eval_limit:
        split.eval = split.eval[: cfg.eval_limit]
    notes: list[str] = [bad_rows.summary()] if bad_rows.skipped else []
    source = None
    if cfg.index and cfg.format == DataFormat.PER_QUESTION.value:
        source = PassageSource.from_index(cfg.index, embedder=embedder)
    elif cfg.format == DataFormat.PER_QUESTION.value:
        notes.append("no --index given: per-question examples carry no passages ('(no passages retrieved)')")
    common = dict(fmt=cfg.format, passages=source, distractors=cfg.distractors, k=cfg.k, summaries=cfg.summaries,
                  seed=seed, max_chars_per_passage=cfg.max_chars_per_passage, max_answer_words=cfg.max_answer_words,
                  gold_passages=cfg.gold_passages)
    train_rows, train_stats = build_examples(split.train, **common)
    eval_rows, eval_stats = build_examples(split.eval, **common) if split.eval else ([], BuildStats())
    if not train_rows:
        hint = ("cases need 'summary' and answers for every question" if cfg.format == DataFormat.WHOLE_CASE.value
                else "cases need 'answers' (or 'options' + 'answer_key') or a 'summary'")
        raise DataError(f"{cfg.train}: no training example has a completion ({hint}; "
                        f"{train_stats.skipped_questions} questions had no reference answer)")
    if split.dropped_duplicates:
        notes.append(f"dropped {split.dropped_duplicates} eval cases duplicating training cases")
    if split.dropped_augmented:
        notes.append(f"dropped {split.dropped_augmented} augmented eval cases (augmented rows never enter eval)")
    if train_stats.gold_missing:
        notes.append(f"{train_stats.gold_missing} gold evidence ids were not found in the index")
    if not eval_rows:
        notes.append("no eval examples: no eval loss, no early stopping")
    return PreparedData(train_rows, eval_rows, train_stats, eval_stats, split, notes)


def to_dataset(rows: Sequence[dict[str, Any]]) -> Any:
    """A ``datasets.Dataset`` with only the columns TRL needs (prompt, completion)."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
