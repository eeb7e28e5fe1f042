"""Per-question records → ``metrics.json`` (per-arm averages) and the paired comparisons between arms.

``metrics.json`` (stable; documented in ``docs/evaluation.md``)::

    {"cases": N, "questions": M,
     "arms": {ARM: {"retrieval": {"hit@5", "recall@10", "mrr@10", "ndcg@10"} | null,
                    "answers": {"token_f1", "rouge_l", "mcq_accuracy" | null, "numeric_accuracy" | null,
                                "decision_accuracy" | null} | null,
                    "summary": {"rouge_l"} | null,
                    "structure": {"one_answer_per_question"},
                    "cost": {"llm_calls_per_case", "tokens_per_case", "seconds_per_case_p50", "seconds_per_case_p95"},
                    "errors": int, "config": {"strategy", "generator", "adapter", "retrieval"},
                    "decisions": {"questions", "given", "yes", "no", "maybe"} | null}},
     "comparisons": [{"a", "b", "metric", "diff", "ci_low", "ci_high", "n_cases", "level", "significant", "why"}]}

Every metric is the mean over the questions it applies to (micro-average); a group is null when none of
its metrics applies to any question. ``errors`` (cases that raised), ``config``, ``decisions`` and ``comparisons``
are additions to the issue's schema; readers that only know the base keys can ignore them. ``decisions`` counts the
yes/no/maybe an arm committed to on questions scored by ``decision_accuracy`` (``given``: how many committed to one),
because accuracy alone cannot tell a model that never commits from one that always says "yes".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from clinrag.core.defaults import BOOTSTRAP_RESAMPLES, NO_TRANSLATION_STRATEGY

from .answer_metrics import DECISIONS
from .bootstrap import paired_bootstrap
from .scoring import ANSWER_KEYS, RETRIEVAL_KEYS

COMPARED = (*RETRIEVAL_KEYS, *ANSWER_KEYS, "summary_rouge_l")
#: The metric each arm is ranked by when picking the "best" arm to compare the others with.
HEADLINE = ("ndcg@10", "token_f1", "rouge_l", "mcq_accuracy", "numeric_accuracy", "decision_accuracy")


def _by_case(records: Sequence[dict[str, Any]], arm: str, case_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    wanted = set(case_ids)
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r["arm"] == arm and r["case_id"] in wanted:
            out.setdefault(r["case_id"], []).append(r)
    for rows in out.values():
        rows.sort(key=lambda r: r["question_index"])
    return out


def case_scores(rows: list[dict[str, Any]], metric: str) -> list[float]:
    """The per-question values of ``metric`` in one case (case-level for ``summary_rouge_l``)."""
    if metric == "summary_rouge_l":
        value = rows[0]["case"].get("summary_rouge_l") if rows else None
        return [] if value is None else [float(value)]
    return [float(r["metrics"][metric]) for r in rows if metric in r["metrics"]]


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _group(values: dict[str, float | None], required: Sequence[str]) -> dict[str, float | None] | None:
    if all(values[k] is None for k in required):
        return None
    return values


def arm_metrics(rows_by_case: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One arm's block of ``metrics.json`` from its per-case rows."""
    pooled: dict[str, list[float]] = {m: [] for m in COMPARED}
    seconds, calls, tokens, structure, errors = [], [], [], [], 0
    for rows in rows_by_case.values():
        for m in COMPARED:
            pooled[m].extend(case_scores(rows, m))
        case = rows[0]["case"]
        seconds.append(float(case["seconds"]))
        calls.append(float(case["llm_calls"]))
        tokens.append(float(case["completion_tokens"]))
        structure.append(float(case["structure_ok"]))
        errors += rows[0].get("error") is not None
    means = {m: _mean(v) for m, v in pooled.items()}
    return {
        "retrieval": _group({k: means[k] for k in RETRIEVAL_KEYS}, RETRIEVAL_KEYS),
        "answers": _group({k: means[k] for k in ANSWER_KEYS}, ANSWER_KEYS),
        "summary": None if means["summary_rouge_l"] is None else {"rouge_l": means["summary_rouge_l"]},
        "structure": {"one_answer_per_question": _mean(structure)},
        "cost": {"llm_calls_per_case": _mean(calls), "tokens_per_case": _mean(tokens),
                 "seconds_per_case_p50": round(float(np.percentile(seconds, 50)), 4) if seconds else None,
                 "seconds_per_case_p95": round(float(np.percentile(seconds, 95)), 4) if seconds else None},
        "errors": errors,
        "decisions": decision_counts(rows_by_case),
    }


def decision_counts(rows_by_case: dict[str, list[dict[str, Any]]]) -> dict[str, int] | None:
    """How often the arm committed to yes/no/maybe on the questions ``decision_accuracy`` scored; None if none were."""
    scored = [r for rows in rows_by_case.values() for r in rows if "decision_accuracy" in r["metrics"]]
    if not scored:
        return None
    given = [r.get("decision") for r in scored if r.get("decision") in DECISIONS]
    return {"questions": len(scored), "given": len(given), **{d: given.count(d) for d in DECISIONS}}


def metric_value(block: dict[str, Any], metric: str) -> float | None:
    """A metric's value in an arm's block (``summary_rouge_l`` lives in the summary group)."""
    if metric == "summary_rouge_l":
        return (block.get("summary") or {}).get("rouge_l")
    group = "retrieval" if metric in RETRIEVAL_KEYS else "answers"
    return (block.get(group) or {}).get(metric)


def comparison_pairs(arms: Sequence[Any], blocks: dict[str, dict[str, Any]], metric: str) -> list[tuple[str, str, str]]:
    """(a, b, why) pairs to compare on ``metric``: every arm against ``none`` and the no-retrieval arm of its
    generator, adapter against base for the same strategy, each pair of adapters for the same strategy (in the
    order given, e.g. tuned with vs without an extended vocabulary), and the best arm against every other arm."""
    pairs: list[tuple[str, str, str]] = []
    group = {a.name: (a.generator, a.adapter) for a in arms}
    for a in arms:
        for b in arms:
            if a.name == b.name or group[a.name] != group[b.name] or not a.retrieval:
                continue
            if not b.retrieval:
                pairs.append((a.name, b.name, "vs no retrieval"))
            elif b.strategy == NO_TRANSLATION_STRATEGY and a.strategy != NO_TRANSLATION_STRATEGY:
                pairs.append((a.name, b.name, "vs no translation"))
    for a in arms:
        for b in arms:
            if (a.adapter and not b.adapter and a.strategy == b.strategy and a.generator == b.generator
                    and a.retrieval == b.retrieval):
                pairs.append((a.name, b.name, "adapter vs base"))
    for i, a in enumerate(arms):
        for b in arms[i + 1:]:
            if (a.adapter and b.adapter and a.adapter != b.adapter and a.strategy == b.strategy
                    and a.generator == b.generator and a.retrieval == b.retrieval):
                pairs.append((a.name, b.name, "adapter vs adapter"))
    scored = [(metric_value(blocks[a.name], metric), a.name) for a in arms]
    scored = [(v, n) for v, n in scored if v is not None]
    if len(scored) > 1:
        best = max(scored)[1]
        pairs += [(best, n, "best vs other") for _, n in scored if n != best]
    seen, out = set(), []
    for a, b, why in pairs:
        if (a, b) not in seen:
            seen.add((a, b))
            out.append((a, b, why))
    return out


def aggregate(records: Sequence[dict[str, Any]], arms: Sequence[Any], case_ids: Sequence[str], n_questions: int,
              *, n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """The full ``metrics.json`` object for ``arms`` over ``case_ids``."""
    rows = {a.name: _by_case(records, a.name, case_ids) for a in arms}
    blocks = {}
    for a in arms:
        block = arm_metrics(rows[a.name])
        block["config"] = {"strategy": a.strategy, "generator": a.generator, "adapter": a.adapter,
                           "retrieval": a.retrieval}
        blocks[a.name] = block
    comparisons = []
    for metric in COMPARED:
        for a, b, why in comparison_pairs(arms, blocks, metric):
            common = [c for c in case_ids if c in rows[a] and c in rows[b]]
            sa = [case_scores(rows[a][c], metric) for c in common]
            sb = [case_scores(rows[b][c], metric) for c in common]
            if not any(sa) or any(len(x) != len(y) for x, y in zip(sa, sb)):
                continue
            result = paired_bootstrap(sa, sb, n_resamples=n_resamples, seed=seed)
            comparisons.append({"a": a, "b": b, "metric": metric, **result.as_dict(), "why": why})
    return {"cases": len(case_ids), "questions": n_questions, "arms": blocks, "comparisons": comparisons}
