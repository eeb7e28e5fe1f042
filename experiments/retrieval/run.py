"""Reproduce the retrieval tables of docs/retrieval.md (issue #16).

    python experiments/retrieval/run.py defaults [--index .cache/full-index] [--timing-cases 30]
    python experiments/retrieval/run.py tuned --tuned-index .cache/tuned-index [--index .cache/full-index]

``defaults``: on ``medquad_multi_dev`` and ``pubmedqa_dev`` (whole files, and the train / held-out parts of
docs/eval-results/splits/real-model-v1.json separately: the settings were chosen on train), the default pipeline
(decomposition -> retrieve per sub-question, k = 5) against per-question dense and per-question RRF(dense, BM25)
(k = 10, as ``index evaluate``), the old default, and one ablation per changed setting; paired case-clustered
bootstrap CIs of every difference; seconds per case from a separate pass where the query cache is emptied
before each case and arm (arms interleaved per case, so machine load hits all alike). Writes
``experiments/retrieval/defaults.json``.

``tuned``: the same arms on the held-out parts only, with the untuned index and a tuned one (built with
``clinrag index build --embedder DIR``), and the tuned - untuned differences. Writes ``tuned.json`` and its table, ``tuned.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
SHARED = Path(os.environ.get("CLINRAG_SHARED_DATA") or REPO.parent / "shared" / "data")
SPLIT = REPO / "docs" / "eval-results" / "splits" / "real-model-v1.json"
SETS = ("medquad_multi_dev", "pubmedqa_dev")

import arms as A
from clinrag.core.cases import load_cases
from clinrag.core.splits import read_split
from clinrag.retrieval import retriever as R
from clinrag.retrieval.store import PassageIndex


def retrievers(index: PassageIndex) -> dict[str, R.IndexRetriever]:
    """One retriever per setting, all sharing one query cache (quality pass: each text is encoded once)."""
    R.QUERY_CACHE = 1_000_000
    rs = {
        "dense": R.IndexRetriever(index, mode="dense", contrast=0),
        "rrf": R.IndexRetriever(index, mode="hybrid", fusion="rrf", contrast=0),
        "default": R.IndexRetriever(index),
        "old_default": R.IndexRetriever(index, mode="dense", contrast=0),
        "dense_contrast": R.IndexRetriever(index, mode="dense"),
        "rrf_contrast": R.IndexRetriever(index, fusion="rrf"),
    }
    first = rs["dense"]
    for r in rs.values():
        r._cache, r._lock, r._embedder = first._cache, first._lock, first.embedder
    return rs


TIMED = ("per-question dense (k=10)", "per-question RRF dense+BM25 (k=10)", "default (k=5)",
         "old default: dense, scenario appended, no contrast (k=5)")


def arm_table(index: PassageIndex, *, ablations: bool, batched: bool = True) -> tuple[dict[str, A.Ranker], dict]:
    rs = retrievers(index)
    table = {
        "per-question dense (k=10)": A.per_question(rs["dense"]),
        "per-question RRF dense+BM25 (k=10)": A.per_question(rs["rrf"]),
        "default (k=5)": A.pipeline(rs["default"], batched=batched),
        "old default: dense, scenario appended, no contrast (k=5)": A.pipeline(
            rs["old_default"], old_text=True, contrast=False, batched=batched),
    }
    if ablations:
        table.update({
            "default with old query text": A.pipeline(rs["default"], old_text=True),
            "default without sibling contrast": A.pipeline(rs["default"], contrast=False),
            "default with dense mode": A.pipeline(rs["dense_contrast"]),
            "default with RRF fusion (k=60)": A.pipeline(rs["rrf_contrast"]),
            "default + near-duplicate removal (cos>=0.95)": A.pipeline(rs["default"], diversify=0.95, index=index),
            "default at k=10": A.pipeline(rs["default"], k=10),
        })
    return table, rs


def parts(set_name: str) -> dict[str, set[str]]:
    entry = read_split(SPLIT)["sets"][set_name]
    return {p: set(ids) for p, ids in entry["parts"].items()}


def query_stats(cases: list) -> dict[str, int]:
    """How often each suspected cause of the old default's loss occurs in a set."""
    from clinrag.plugins.strategies.decomposition import decompose

    stats = {"questions": sum(c.n_questions for c in cases), "compound_splits": 0, "scenario_appended_old": 0,
             "scenario_appended_new": 0, "double_question_mark": 0}
    for c in cases:
        subs = decompose(c)
        stats["compound_splits"] += len(subs) - c.n_questions
        stats["scenario_appended_new"] += sum(sq.queries[0].text != sq.text for sq in subs)
        stats["scenario_appended_old"] += sum(A.old_query_text(c, sq.text) != sq.text for sq in subs)
        stats["double_question_mark"] += sum(q.rstrip().endswith("? ?") for q in c.questions)
    return stats


def evaluate(index: PassageIndex, *, part_names: list[str], ablations: bool, timing_cases: int) -> dict:
    """Scores (summaries, CIs vs the two baselines) per set and part; ``raw`` keeps per-case scores."""
    table, _ = arm_table(index, ablations=ablations)
    timed, timed_rs = arm_table(index, ablations=False, batched=False)
    out: dict = {"embedder": {k: v for k, v in index.embedder_config.items()}, "sets": {}, "raw": {}}
    for set_name in SETS:
        cases = load_cases(SHARED / "cases" / f"{set_name}.jsonl")
        split = parts(set_name)
        if "all" not in part_names:  # score only the cases some requested part holds
            wanted = set().union(*(split[p] for p in part_names))
            cases = [c for c in cases if c.id in wanted]
        # batched ranking vs the graph's per-sub-question calls: the same searches; only the query vectors can
        # differ in the last bits (bf16 encoding of a big batch vs a small one), so near-ties may swap.
        probe = cases[:timing_cases]
        agreement = {}
        for name in TIMED[2:]:
            a, b = table[name](probe), timed[name](probe)
            same = [x[:5] == y[:5] for ca, cb in zip(a, b) for x, y in zip(ca, cb)]
            agreement[name] = round(sum(same) / len(same), 4) if same else None
            timed_rs["dense"]._cache.clear()
        scored = {}
        for name, rank in table.items():
            start = time.perf_counter()
            scored[name] = A.score(cases, rank(cases))
            print(f"{set_name}: {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        seconds = A.seconds_per_case(cases[:timing_cases], {n: timed[n] for n in TIMED},
                                     timed_rs["dense"]._cache.clear)
        result: dict = {"stats": query_stats(cases), "timing_cases": min(timing_cases, len(cases)),
                        "batched_vs_per_call_identical_top5": agreement,
                        "seconds_per_case_cold": seconds, "parts": {}}
        for part in part_names:
            keep = [i for i, c in enumerate(cases) if part == "all" or c.id in split[part]]
            sub = {n: {m: [s[m][i] for i in keep] for m in ("hit@5", "mrr@10")} for n, s in scored.items()}
            base = list(table)[:2]
            diffs = {n: {b: A.compare(sub[n], sub[b]) for b in base} for n in table if n not in base}
            result["parts"][part] = {"cases": len(keep), "arms": {n: A.summary(v) for n, v in sub.items()},
                                     "vs_baselines": diffs}
            out["raw"][(set_name, part)] = sub
        out["sets"][set_name] = result
    return out


def markdown(out: dict, part: str) -> str:
    lines = ["| set | arm | hit@5 | MRR@10 | Δhit@5 vs dense [95% CI] | ΔMRR vs dense | Δhit@5 vs RRF | ΔMRR vs RRF |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for set_name, res in out["sets"].items():
        p = res["parts"][part]
        for arm, row in p["arms"].items():
            cells = []
            for base in list(p["arms"])[:2]:
                for m in ("hit@5", "mrr@10"):
                    d = p["vs_baselines"].get(arm, {}).get(base, {}).get(m)
                    cells.append(f"{d['diff']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]" if d else "")
            lines.append(f"| {set_name} ({p['cases']} cases) | {arm} | {row['hit@5']:.3f} | {row['mrr@10']:.3f} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_tuned(out: dict) -> str:
    """The tuned-vs-untuned table: every arm on each held-out set, both embedders, the paired differences."""
    def ci(d: dict) -> str:
        return f"{d['diff']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"

    lines = ["| held-out set | arm | untuned hit@5 / MRR@10 | tuned hit@5 / MRR@10 | Δ hit@5 [95% CI] | Δ MRR@10 [95% CI] |",
             "|---|---|---:|---:|---:|---:|"]
    for set_name in SETS:
        u, t = (out[side]["sets"][set_name]["parts"]["heldout"] for side in ("untuned", "tuned"))
        for arm, row in u["arms"].items():
            g, tr = out["tuned_minus_untuned"][set_name][arm], t["arms"][arm]
            lines.append(f"| {set_name} ({u['cases']} cases, {row['questions']} q.) | {arm} | {row['hit@5']:.3f} / "
                         f"{row['mrr@10']:.3f} | {tr['hit@5']:.3f} / {tr['mrr@10']:.3f} | {ci(g['hit@5'])} | "
                         f"{ci(g['mrr@10'])} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["defaults", "tuned"])
    ap.add_argument("--index", default=str(REPO / ".cache" / "full-index"))
    ap.add_argument("--tuned-index", default=str(REPO / ".cache" / "tuned-index"))
    ap.add_argument("--timing-cases", type=int, default=30)
    ap.add_argument("--out", type=Path, default=HERE / "tuned.json", help="tuned only: where the JSON goes (its "
                    "table beside it, .md)")
    args = ap.parse_args()
    base = PassageIndex.load(args.index)
    if args.what == "defaults":
        out = evaluate(base, part_names=["all", "train", "heldout"], ablations=True, timing_cases=args.timing_cases)
        out.pop("raw")
        out["command"] = "python experiments/retrieval/run.py defaults"
        (HERE / "defaults.json").write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        (HERE / "defaults.md").write_text("\n\n".join(f"### {p}\n\n{markdown(out, p)}" for p in
                                                      ("all", "train", "heldout")) + "\n", encoding="utf-8")
        return
    untuned = evaluate(base, part_names=["heldout"], ablations=False, timing_cases=args.timing_cases)
    tuned = evaluate(PassageIndex.load(args.tuned_index), part_names=["heldout"], ablations=False,
                     timing_cases=args.timing_cases)
    for res in (untuned, tuned):
        res["index"] = {"passages": len(PassageIndex.load(args.index if res is untuned else args.tuned_index))}
    gains = {}
    for set_name in SETS:
        a, b = tuned["raw"][(set_name, "heldout")], untuned["raw"][(set_name, "heldout")]
        gains[set_name] = {arm: A.compare(a[arm], b[arm]) for arm in a}
    for r in (untuned, tuned):
        r.pop("raw")
    command = (f"python experiments/retrieval/run.py tuned --index {args.index} --tuned-index {args.tuned_index} "
               f"--timing-cases {args.timing_cases}")
    if args.out.resolve() != (HERE / "tuned.json").resolve():
        command += f" --out {args.out}"
    out = {"command": command, "untuned": untuned, "tuned": tuned, "tuned_minus_untuned": gains}
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(f"`{out['command']}`\n\n{markdown_tuned(out)}\n", encoding="utf-8")


if __name__ == "__main__":
    main()
