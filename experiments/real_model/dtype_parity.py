"""The speed issue's second quality gate (#15): do the held-out metrics survive a lower-precision CPU dtype?

``python experiments/real_model/run.py evaluate-bf16`` answers the held-out sets again with
``--option dtype=bfloat16-weights`` (same cases, index, adapter and arms as the float32 ``evaluate`` stage) and
then runs this script, which pairs each arm's records of the two runs case by case and reports, per metric, the
bfloat16-weights − float32 difference with its paired (case-clustered) bootstrap 95 % CI::

    python experiments/real_model/dtype_parity.py FLOAT32_EVAL_DIR BF16_EVAL_DIR [--out parity.json]

The issue's criterion is "the held-out metrics within their CI": a dtype passes on a metric when its mean lies
inside the float32 arm's own 95 % case-bootstrap interval (``within_reference_ci``); the paired difference is
reported beside it, so a real shift that a wide interval would hide stays visible. Only cases finished without
error in both runs are compared; each run's errored cases are counted, so a failure in one dtype is not hidden.
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


def by_arm_case(records: list[dict]) -> tuple[dict[str, dict[str, list[dict]]], dict[str, set[str]]]:
    """Complete rows per arm and case, and per arm the cases with an errored row."""
    out: dict[str, dict[str, list[dict]]] = {}
    errored: dict[str, set[str]] = {}
    for r in records:
        if r.get("error") is None:
            out.setdefault(r["arm"], {}).setdefault(r["case_id"], []).append(r)
        else:
            errored.setdefault(r["arm"], set()).add(r["case_id"])
    for cases in out.values():
        for rows in cases.values():
            rows.sort(key=lambda r: r["question_index"])
    return out, errored


def _complete(rows: list[dict]) -> bool:
    return len(rows) == rows[0].get("rows_in_case", len(rows))


def compare(reference: list[dict], candidate: list[dict]) -> dict:
    """Per arm and metric, over the cases both runs finished: the candidate's mean, the reference's mean with its
    95 % case-bootstrap interval, whether the candidate lies inside it, and the paired difference."""
    (ref, ref_err), (cand, cand_err) = by_arm_case(reference), by_arm_case(candidate)
    out: dict = {}
    for arm in sorted(set(ref) & set(cand)):
        cases = sorted(c for c in set(ref[arm]) & set(cand[arm]) - ref_err.get(arm, set()) - cand_err.get(arm, set())
                       if _complete(ref[arm][c]) and _complete(cand[arm][c]) and len(ref[arm][c]) == len(cand[arm][c]))
        block: dict = {"cases": len(cases), "errored_cases": {"reference": len(ref_err.get(arm, ())),
                                                              "candidate": len(cand_err.get(arm, ()))}, "metrics": {}}
        for metric in METRICS:
            a = [case_scores(cand[arm][c], metric) for c in cases]
            b = [case_scores(ref[arm][c], metric) for c in cases]
            if not any(a) or any(len(x) != len(y) for x, y in zip(a, b)):
                continue
            ref_ci = paired_bootstrap(b, [[0.0] * len(x) for x in b])  # the reference mean's own interval
            cand_mean = sum(map(sum, a)) / sum(map(len, a))  # the question-level micro-average, as reported
            block["metrics"][metric] = {
                "candidate": round(cand_mean, 4), "reference": round(ref_ci.diff, 4),
                "reference_ci": [round(ref_ci.low, 4), round(ref_ci.high, 4)],
                "within_reference_ci": ref_ci.low <= cand_mean <= ref_ci.high,
                "paired_difference": paired_bootstrap(a, b).as_dict()}
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
