"""Derived data for the tuned-retriever experiment, written under runs/retrieval/ (never committed).

    python experiments/retrieval/prepare.py [--index .cache/full-index] [--distractors 2000]

1. ``train.jsonl``: the train parts of medquad_multi_dev (300 cases) and pubmedqa_dev (400) from the committed
   split docs/eval-results/splits/real-model-v1.json: what ``clinrag index tune-embedder`` trains on.
2. ``heldout_corpus.jsonl``: the held-out evaluation corpus: every passage whose title names a condition of a
   held-out MedQuAD case (on any NIH site: all its aspects and the near-duplicates, i.e. the passages the
   embedder confuses), the held-out PubMedQA abstracts plus ``--pubmed-others`` seeded other abstracts, and
   ``--distractors`` seeded random others. Re-embedding all 29,285 passages with the tuned model does not fit
   this shared 2-core machine's time (a niced process got ~0.15 of a core), so tuned and untuned are compared on
   this corpus.
3. ``.cache/heldout-untuned``: that corpus indexed with the untuned MiniLM vectors read back from ``--index``
   (no re-embedding, identical vectors to the full index).
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from clinrag.core.splits import split_cases
from clinrag.retrieval.store import PassageIndex
from run import REPO, SETS, SHARED, SPLIT

OUT = REPO / "runs" / "retrieval"


def condition(title: str) -> str:
    """``"Prostate Cancer (treatment)"`` -> ``"prostate cancer"``."""
    return " ".join(re.sub(r"\s*\([^()]*\)\s*$", "", title).lower().split())


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--index", default=str(REPO / ".cache" / "full-index"))
    ap.add_argument("--distractors", type=int, default=0)
    ap.add_argument("--pubmed-others", type=int, default=100)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    train = [c for s in SETS for c in split_cases(SPLIT, s, "train", SHARED)]
    heldout = [c for s in SETS for c in split_cases(SPLIT, s, "heldout", SHARED)]
    (OUT / "train.jsonl").write_text("".join(c.model_dump_json() + "\n" for c in train), encoding="utf-8")
    index = PassageIndex.load(args.index)
    by_id = {p.id: i for i, p in enumerate(index.passages)}
    gold = {g for c in heldout for ev in (c.evidence or []) for g in ev}
    conditions = {condition(index.passages[by_id[g]].title) for g in gold if g.startswith("medquad")}
    rng = random.Random(0)
    is_pubmed = [str(p.metadata.get("source", "")).startswith("PubMedQA") for p in index.passages]
    chosen = {i for i, p in enumerate(index.passages)
              if p.id in gold or (condition(p.title) in conditions and not is_pubmed[i])}
    pubmed = [i for i in range(len(index.passages)) if is_pubmed[i] and i not in chosen]
    chosen |= set(rng.sample(pubmed, min(args.pubmed_others, len(pubmed))))
    others = [i for i in range(len(index.passages)) if i not in chosen and not is_pubmed[i]]
    rows = sorted(chosen | set(rng.sample(others, args.distractors)))
    passages = [index.passages[i] for i in rows]
    with (OUT / "heldout_corpus.jsonl").open("w", encoding="utf-8") as fh:
        for p in passages:
            fh.write(json.dumps({"id": p.id, "title": p.title, "text": p.text, **p.metadata}) + "\n")
    vectors = index.vectors()[rows]
    sub = PassageIndex.from_vectors(passages, vectors, index.embedder_config)
    sub.save(REPO / ".cache" / "heldout-untuned")
    print(json.dumps({"train_cases": len(train), "heldout_cases": len(heldout), "heldout_conditions": len(conditions),
                      "heldout_corpus_passages": len(passages), "gold_in_corpus": len(gold & {p.id for p in passages}),
                      "gold": len(gold)}))


if __name__ == "__main__":
    main()
