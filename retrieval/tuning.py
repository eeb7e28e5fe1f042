"""Domain-tuning the embedder on (question, gold passage) pairs with sentence-transformers' own trainer.

``clinrag index tune-embedder CASES... --corpus CORPUS --out DIR [--index DIR]`` builds, for every question with
gold ``evidence``, triplets (question, gold passage, hard negative) and fine-tunes the sentence-transformers
model with ``SentenceTransformerTrainer`` and ``MultipleNegativesRankingLoss`` (in-batch negatives: every other
passage of the batch is a negative, plus each row's hard negative). The batch sampler keeps a text from
appearing twice in one batch, so a question with several gold windows never meets its own gold as a negative.

Hard negatives come from the current index (``--index``; built with the base embedder when absent): the
highest-ranked dense hit that is not gold. Passages sharing the gold passage's title (the other windows of the
same answer, or the same condition and aspect on another NIH site) are skipped: they are relevant, and training
the model to push them away would teach it which site the gold list happened to name. What remains near the top
is what the base model confuses: the same condition's other aspects, neighbouring conditions.

All given cases are trained on; splitting train from evaluation cases is the caller's job. The output is a
standard sentence-transformers folder (safetensors) plus ``clinrag_tuning.json`` (base model, data, settings,
seconds), loadable by ``SentenceTransformer(DIR)`` and by ``clinrag index build --embedder DIR``.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clinrag.core.cases import Case
from clinrag.core.defaults import (
    TUNE_BATCH_SIZE,
    TUNE_EPOCHS,
    TUNE_LEARNING_RATE,
    TUNE_POSITIVES,
)
from clinrag.core.errors import ClinragError
from clinrag.core.io import atomic_dir_write
from clinrag.core.types import Passage

TUNING_FILE = "clinrag_tuning.json"


class TuningError(ClinragError, ValueError):
    """The cases give nothing to train on (no question with gold evidence in the corpus)."""


@dataclass
class TuneSpec:
    """Training settings; the defaults are the ones measured in docs/retrieval.md."""

    epochs: float = TUNE_EPOCHS
    seed: int = 0
    batch_size: int = TUNE_BATCH_SIZE
    learning_rate: float = TUNE_LEARNING_RATE
    #: Share of the steps spent warming the learning rate up (transformers 5 reads a float < 1 as a ratio).
    warmup_ratio: float = 0.1
    positives_per_question: int = TUNE_POSITIVES
    #: How deep in the current index's dense ranking a hard negative is looked for.
    negative_depth: int = 30
    #: Stop after this many steps (-1: run the epochs); a capped run draws (seeded) only the pairs it will see,
    #: so hard negatives are mined for those alone.
    max_steps: int = -1
    #: Tokens a text is cut to while training (None: the model's own limit); the saved model keeps its own.
    max_seq_length: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _norm_title(title: str) -> str:
    return " ".join(title.lower().split())


def training_pairs(cases: Sequence[Case], passages: Sequence[Passage], *,
                   positives_per_question: int = TUNE_POSITIVES) -> tuple[list[tuple[str, Passage, set[str]]], int]:
    """``([(question, gold passage, all gold ids of the question)], questions without usable gold)``."""
    by_id = {p.id: p for p in passages}
    pairs: list[tuple[str, Passage, set[str]]] = []
    skipped = 0
    for case in cases:
        for i, question in enumerate(case.questions):
            gold = [g for g in ((case.evidence or [[]] * case.n_questions)[i] or []) if g in by_id]
            if not gold:
                skipped += 1
                continue
            for g in gold[:positives_per_question]:
                pairs.append((question, by_id[g], set(gold)))
    return pairs, skipped


def mine_negatives(pairs: Sequence[tuple[str, Passage, set[str]]], index: Any, embedder: Any, *,
                   depth: int, seed: int = 0) -> list[Passage]:
    """One hard negative per pair: the best-ranked dense hit for the question that is neither gold nor shares a
    gold passage's title (a random passage when the top ``depth`` holds none)."""
    questions = list(dict.fromkeys(q for q, _, _ in pairs))
    vectors = embedder.encode_queries(questions)
    ranked = dict(zip(questions, index.search_vectors(vectors, depth)))
    titles: dict[str, set[str]] = {}
    for q, pos, _ in pairs:
        titles.setdefault(q, set()).add(_norm_title(pos.title))
    rng = random.Random(seed)
    out = []
    for q, _, gold in pairs:
        negative = next((h.passage for h in ranked[q]
                         if h.id not in gold and _norm_title(h.passage.title) not in titles[q]), None)
        if negative is None:
            negative = rng.choice(index.passages)
        out.append(negative)
    return out


def tune_embedder(cases: Sequence[Case], passages: Sequence[Passage], out: str | Path, *, index: Any,
                  embedder: Any, spec: TuneSpec | None = None) -> dict[str, Any]:
    """Fine-tune ``embedder`` (a :class:`~clinrag.retrieval.embedder.SentenceTransformerEmbedder`) on the cases'
    (question, gold passage, hard negative) triplets; save a sentence-transformers folder at ``out``.

    ``index`` (a :class:`~clinrag.retrieval.store.PassageIndex` searched with ``embedder``) supplies the hard
    negatives. Returns what ``clinrag_tuning.json`` records.
    """
    from datasets import Dataset
    from sentence_transformers.sentence_transformer.losses import (
        MultipleNegativesRankingLoss,
    )
    from sentence_transformers.sentence_transformer.trainer import (
        SentenceTransformerTrainer,
    )
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )

    from .store import passage_input

    spec = spec or TuneSpec()
    pairs, skipped = training_pairs(cases, passages, positives_per_question=spec.positives_per_question)
    if not pairs:
        raise TuningError("no question of the given cases has gold evidence in the corpus: nothing to train on")
    available = len(pairs)
    if spec.max_steps > 0 and len(pairs) > spec.max_steps * spec.batch_size:
        pairs = random.Random(spec.seed).sample(pairs, spec.max_steps * spec.batch_size)
    start = time.perf_counter()
    negatives = mine_negatives(pairs, index, embedder, depth=spec.negative_depth, seed=spec.seed)
    mined = time.perf_counter() - start
    data = Dataset.from_dict({"anchor": [embedder.query_prefix + q for q, _, _ in pairs],
                              "positive": [embedder.passage_prefix + passage_input(p) for _, p, _ in pairs],
                              "negative": [embedder.passage_prefix + passage_input(n) for n in negatives]})
    # A fresh copy: the embedder's own model is shared per process (retriever, extractive generator) and must
    # not change under them.
    from sentence_transformers import SentenceTransformer

    from .embedder import resolve_model_path

    model = SentenceTransformer(resolve_model_path(embedder.name), device=embedder.device)
    own_length = model.max_seq_length
    if spec.max_seq_length:
        model.max_seq_length = spec.max_seq_length
    out = Path(out)

    def write(tmp: Path) -> None:
        args = SentenceTransformerTrainingArguments(
            output_dir=str(tmp / ".trainer"), num_train_epochs=spec.epochs, max_steps=spec.max_steps,
            per_device_train_batch_size=spec.batch_size, learning_rate=spec.learning_rate,
            warmup_steps=spec.warmup_ratio, seed=spec.seed, data_seed=spec.seed,
            batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", report_to="none",
            logging_steps=10, use_cpu=embedder.device == "cpu", dataloader_num_workers=0)
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                                             loss=MultipleNegativesRankingLoss(model))
        t0 = time.perf_counter()
        result = trainer.train()
        record.update(train_seconds=round(time.perf_counter() - t0, 1), steps=int(result.global_step),
                      train_loss=round(float(result.training_loss), 4))
        import shutil

        shutil.rmtree(tmp / ".trainer", ignore_errors=True)
        model.max_seq_length = own_length
        model.save(str(tmp), safe_serialization=True)
        (tmp / TUNING_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")

    record: dict[str, Any] = {
        "base": embedder.name, "cases": len(cases), "questions_without_gold": skipped,
        "pairs_available": available, "pairs": len(pairs),
        "distinct_questions": len({q for q, _, _ in pairs}), "loss": "MultipleNegativesRankingLoss",
        "hard_negatives": f"dense top-{spec.negative_depth} of the index, gold and same-title passages skipped",
        "mining_seconds": round(mined, 1), "spec": asdict(spec)}
    atomic_dir_write(out, write, kind="tuned-embedder")
    return record
