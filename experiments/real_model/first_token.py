"""Why a PubMedQA decision is what it is: the first answer token's probability of yes / no / maybe.

    python experiments/real_model/first_token.py [--cases 24] [--adapter docs/eval-results/real-model-v1/adapter]

For the first ``--cases`` held-out PubMedQA questions (``runs/real-model-v1/data/pubmedqa_dev-heldout.jsonl``,
written by ``run.py prepare``), it builds the answer prompt with the question's gold passage
(:func:`clinrag.core.prompts.answer_messages`; without the decomposition's "Relevant facts" line, so close to,
not exactly, what the graph sends), runs one float32 forward pass of the base stand-in and of base + adapter, and
prints the mean probability of each decision word as the first token, grouped by the gold decision. A model that
reads the evidence puts more mass on "no" when the gold is "no"; a model that learned only the format and the
class prior puts the same mass on "yes" whatever the gold.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORDS = ("yes", "no", "maybe", "Yes", "No", "Maybe")


def main() -> None:
    import torch
    from clinrag.core.cases import load_cases
    from clinrag.core.models.loading import load_causal_lm
    from clinrag.core.prompts import answer_messages
    from clinrag.core.types import Hit, Passage

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=24)
    ap.add_argument("--adapter", default=str(REPO / "docs" / "eval-results" / "real-model-v1" / "adapter"))
    ap.add_argument("--model", default=str(REPO / ".cache" / "models" / "qwen2.5-coder-0.5b-instruct"))
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "data" / "corpus" / "medical_passages.jsonl"))
    args = ap.parse_args()
    cases = load_cases(REPO / "runs" / "real-model-v1" / "data" / "pubmedqa_dev-heldout.jsonl")[: args.cases]
    want = {e for c in cases for ev in (c.evidence or []) for e in ev}
    corpus = {}
    with open(args.corpus, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["id"] in want:
                corpus[row["id"]] = Passage(row["id"], row["text"], row.get("title", ""))
    result = {"cases": len(cases), "prompt": "answer_messages with the gold passage, no facts line", "models": {}}
    for name, adapter in (("tuned", args.adapter), ("base", None)):
        model, tok = load_causal_lm(args.model, adapter=adapter, dtype="float32")
        ids = {w: tok.encode(w, add_special_tokens=False)[0] for w in WORDS}
        by_gold: dict[str, list[dict[str, float]]] = {}
        for case in cases:
            hits = [Hit(corpus[e], 1.0) for e in case.evidence[0] if e in corpus]
            text = tok.apply_chat_template(answer_messages(case, case.questions[0], hits),
                                           add_generation_prompt=True, tokenize=False)
            x = tok(text, return_tensors="pt", add_special_tokens=False)
            with torch.inference_mode():
                p = model(**x).logits[0, -1].float().softmax(-1)
            by_gold.setdefault(case.meta["final_decision"], []).append({w: float(p[i]) for w, i in ids.items()})
        result["models"][name] = {gold: {"n": len(rows), **{w: round(sum(r[w] for r in rows) / len(rows), 3)
                                                              for w in WORDS}}
                                  for gold, rows in sorted(by_gold.items())}
        del model
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
