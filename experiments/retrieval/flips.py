"""Question by question: where a tuned index ranks the gold passage differently from the untuned one.

    python experiments/retrieval/flips.py --tuned-index .cache/tuned-full-index-256 [--index .cache/full-index]
        [--set pubmedqa_dev] [--part heldout]

For each arm (per-question dense, the default pipeline) it lists every question whose hit@5 or MRR@10 changed,
with the gold ids and the tuned top 5: the cases behind a difference and its confidence interval.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import REPO, SHARED, A, PassageIndex, arm_table, load_cases, parts

ARMS = ("per-question dense (k=10)", "default (k=5)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", default=str(REPO / ".cache" / "full-index"))
    ap.add_argument("--tuned-index", required=True)
    ap.add_argument("--set", default="pubmedqa_dev")
    ap.add_argument("--part", default="heldout")
    args = ap.parse_args()
    wanted = parts(args.set)[args.part]
    cases = [c for c in load_cases(SHARED / "cases" / f"{args.set}.jsonl") if c.id in wanted]
    runs = {}
    for side, path in (("untuned", args.index), ("tuned", args.tuned_index)):
        table, _ = arm_table(PassageIndex.load(path), ablations=False)
        for arm in ARMS:
            ranked = table[arm](cases)
            runs[side, arm] = (A.score(cases, ranked), ranked)
    rel = {p: str(Path(p).resolve()).replace(str(REPO) + "/", "") for p in (args.index, args.tuned_index)}
    print(f"{args.set} ({args.part}, {len(cases)} cases): untuned {rel[args.index]} vs tuned {rel[args.tuned_index]}")
    for arm in ARMS:
        (su, _), (st, rt) = runs["untuned", arm], runs["tuned", arm]
        print(f"\n{arm}")
        for i, case in enumerate(cases):
            scored = [j for j, gold in enumerate(case.evidence or []) if gold]  # A.score skips gold-less questions
            for n, q in enumerate(scored):
                h0, h1, m0, m1 = su["hit@5"][i][n], st["hit@5"][i][n], su["mrr@10"][i][n], st["mrr@10"][i][n]
                if (h0, m0) != (h1, m1):
                    print(f"  {case.id} q{q + 1}: hit@5 {h0:.0f} -> {h1:.0f}, MRR@10 {m0:.2f} -> {m1:.2f} | "
                          f"{case.questions[q][:80]}")
                    print(f"      gold {case.evidence[q]}; tuned top 5 {rt[i][q][:5]}")


if __name__ == "__main__":
    main()
