"""The speed issue's second quality gate (#15): do the held-out metrics survive a lower-precision CPU dtype?

``python experiments/real_model/run.py evaluate-bf16`` answers the held-out sets again with
``--option dtype=bfloat16-weights`` (same cases, index, adapter and arms as the float32 ``evaluate`` stage) and
then runs this script, which pairs each arm's records of the two runs case by case and reports, per metric, the
bfloat16-weights − float32 difference with its paired (case-clustered) bootstrap 95 % CI::

    python experiments/real_model/dtype_parity.py FLOAT32_EVAL_DIR BF16_EVAL_DIR [--out parity.json]

A dtype passes on a metric when that CI contains 0 (the held-out metric is not measurably changed). Only cases
finished in both runs are compared, and their count is reported, so a partial run is never read as a full one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clinrag.evaluation.aggregate import case_scores
from clinrag.evaluation.bootstrap import paired_bootstrap
from clinrag.evaluation.records import load_records

#: Metrics the real-model target is judged on, plus the answer-overlap ones every set has.
METRICS = ("decision_accuracy", "mcq_accuracy", "token_f1", "rouge_l")


def by_arm_case(records: list[dict]) -> dict[str, dict[str, list[dict]]]:
    out: dict[str, dict[str, list[dict]]] = {}
    for r in records:
        if r.get("error") is None:
            out.setdefault(r["arm"], {}).setdefault(r["case_id"], []).append(r)
    for cases in out.values():
        for rows in cases.values():
            rows.sort(key=lambda r: r["question_index"])
    return out


def compare(reference: list[dict], candidate: list[dict]) -> dict:
    """Per arm and metric: the candidate − reference difference over the cases both runs finished."""
    ref, cand = by_arm_case(reference), by_arm_case(candidate)
    out: dict = {}
    for arm in sorted(set(ref) & set(cand)):
        cases = sorted(c for c in set(ref[arm]) & set(cand[arm])
                       if len(ref[arm][c]) == len(cand[arm][c]) == ref[arm][c][0].get("rows_in_case", len(ref[arm][c])))
        block: dict = {"cases": len(cases), "metrics": {}}
        for metric in METRICS:
            a = [case_scores(cand[arm][c], metric) for c in cases]
            b = [case_scores(ref[arm][c], metric) for c in cases]
            if not any(a) or any(len(x) != len(y) for x, y in zip(a, b)):
                continue
            diff = paired_bootstrap(a, b).as_dict()
            diff["passes"] = diff["ci_low"] <= 0 <= diff["ci_high"]
            block["metrics"][metric] = diff
        out[arm] = block
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference", type=Path, help="the float32 evaluation folder (per_question.jsonl)")
    ap.add_argument("candidate", type=Path, help="the same evaluation in the lower-precision dtype")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    runs = []
    for folder in (args.reference, args.candidate):
        path = folder / "per_question.jsonl"
        if not path.exists():
            print(f"{path}: no evaluation records", file=sys.stderr)
            return 2
        runs.append(load_records(path))
    result = {"reference": str(args.reference), "candidate": str(args.candidate), "arms": compare(*runs)}
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
