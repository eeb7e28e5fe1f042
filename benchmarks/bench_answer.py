"""Answering speed: clinrag's ``hf`` generator vs the sequential ``pipeline()``-per-question baseline.

Same model (SmolLM2-135M-Instruct, the GGUF converted once to a folder so load time is not measured), same
prompts (:func:`clinrag.core.prompts.answer_messages`: scenario + that question's passages), same
``max_new_tokens``, greedy, CPU, same process and run, cases alternating which side goes first.

* baseline: ``transformers.pipeline("text-generation")`` called once per question, each call re-reading
  the whole scenario;
* clinrag: ``HFGenerator.answer(case, requests)``: one batched decode per case that computes the shared
  system + scenario prefix once (prompt building, tokenisation and citation parsing included in its time).

Passages are each question's gold evidence from the case file (at most ``--k`` per question): real retrieved-
style passages without timing a retriever, identical on both sides. Reports per-case latency, the speedup,
the share of case time spent outside model forward calls, and whether the generated token ids are equal.

The headline run uses what a user gets by default: torch's thread count (all cores) and the ``hf`` generator's
``max_new_tokens`` (192; SmolLM2 stops most answers earlier). A second run, reported under ``variants``, uses
one thread and 32 new tokens: short answers make the case prefill-bound, where prefix sharing saves only the
scenario's share of each prompt, so the speed-up is smaller there.

``--real-size`` adds the run at the real model size (the 0.5B Qwen stand-in, whole shared cases end to end, the
default dtype, against the same sequential baseline and llama.cpp): ``benchmarks/real_size.py``, reported under
``real_size``; ``--real-size-only`` runs just that and keeps the SmolLM2 figures.

Usage: ``python benchmarks/bench_answer.py [--cases-demo N] [--cases-medquad N] [--max-new-tokens N]
[--real-size | --real-size-only]``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "answer.json"
GGUF = REPO / ".cache" / "models" / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_DIR = REPO / ".cache" / "models" / "smollm2-hf"
SHARED = next((p for p in [Path(os.environ.get("CLINRAG_SHARED_DATA", REPO.parent / "shared" / "data")),
                            REPO.parent.parent / "shared" / "data"] if (p / "README.md").exists()),
              REPO.parent / "shared" / "data")
DEMO_CASES, DEMO_KB = REPO / "examples" / "demo" / "cases.jsonl", REPO / "examples" / "demo" / "knowledge_base.jsonl"


class ForwardTimer:
    """Wall time spent inside ``model(...)`` calls (forward hooks on the top module)."""

    def __init__(self, model) -> None:
        self.total, self.calls, self._t0 = 0.0, 0, 0.0
        model.register_forward_pre_hook(self._pre)
        model.register_forward_hook(self._post)

    def _pre(self, *_):
        self._t0 = time.perf_counter()

    def _post(self, *_):
        self.total += time.perf_counter() - self._t0
        self.calls += 1


def load_passages(path: Path, wanted: set[str]):
    from clinrag.core.types import Passage

    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["id"] in wanted:
                out[row["id"]] = Passage(row["id"], row["text"], row.get("title", ""))
    return out


def requests_for(case, passages, k):
    from clinrag.core.types import Hit, Query, SubQuestion
    from clinrag.plugins.generators.base import AnswerRequest

    reqs = []
    for i, q in enumerate(case.questions):
        ids = [p for p in (case.evidence[i] if case.evidence else [])[:k] if p in passages]
        hits = tuple(Hit(passages[p], 1.0 - r / 10, r) for r, p in enumerate(ids))
        reqs.append(AnswerRequest(SubQuestion(f"q{i + 1}", i, q, (Query(q),)), q, hits,
                                  case.reference("options", i) if case.options else None))
    return reqs


def pick_cases(args):
    from clinrag.core.cases import load_cases

    picked = []  # (source, case, corpus path)
    demo = [c for c in load_cases(DEMO_CASES) if c.evidence][: args.cases_demo]
    picked += [("demo", c, DEMO_KB) for c in demo]
    medquad = SHARED / "cases" / "medquad_multi_dev.jsonl"
    if args.cases_medquad and not medquad.exists():
        print(f"note: {medquad} not found (set CLINRAG_SHARED_DATA); demo cases only", file=sys.stderr)
    if args.cases_medquad and medquad.exists():
        mq = [c for c in load_cases(medquad) if 3 <= len(c.questions) <= 6][: args.cases_medquad]
        picked += [("medquad", c, SHARED / "corpus" / "medical_passages.jsonl") for c in mq]
    return picked


VARIANT = {"threads": 1, "max_new_tokens": 32}  # prefill-bound: short answers, one core


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases-demo", type=int, default=2)
    ap.add_argument("--cases-medquad", type=int, default=2)
    ap.add_argument("--k", type=int, default=2, help="passages per question")
    ap.add_argument("--max-new-tokens", type=int, default=None,
                    help="same limit on both sides (default: the hf generator's own default)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch intra-op threads (0: torch's default, all cores, as users run it; 1 is steadier "
                         "on a box shared with other jobs)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--no-variant", dest="variant", action="store_false",
                    help=f"skip the second, prefill-bound measurement ({VARIANT})")
    ap.add_argument("--real-size", action="store_true",
                    help="also run the real-size benchmark (0.5B Qwen stand-in, whole shared cases, vs the sequential "
                         "baseline and llama.cpp; benchmarks/real_size.py), written under 'real_size'")
    ap.add_argument("--real-size-only", action="store_true",
                    help="only the real-size run; the SmolLM2 figures already in --out are kept")
    ap.add_argument("--real-cases", type=int, default=3, help="shared cases timed in the real-size run")
    ap.add_argument("--parity-cases", type=int, default=6,
                    help="further cases decoded in both dtypes (32-token answers) for the quality gate (the gate "
                         "needs >= 30 rows: with 3 timed 3-question cases, 5 more)")
    ap.add_argument("--parity-dtypes", default="",
                    help="comma-separated dtypes also compared with float32 on the parity cases (e.g. bfloat16)")
    ap.add_argument("--real-index", type=Path, default=REPO / ".cache" / "full-index",
                    help="index the real-size run retrieves from (default: the full 29k-passage index)")
    ap.add_argument("--real-threads", type=int, default=0,
                    help="threads of the real-size run (0: torch's default, what a user gets; 1 on a busy machine, "
                         "where two spinning OpenMP threads collapse)")
    ap.add_argument("--real-raw-dir", type=Path, default=None,
                    help="keep each side's raw result here and reuse the ones already there (resume a long run)")
    ap.add_argument("--real-dtype", default="",
                    help="dtype of the real-size clinrag side (default: the hf generator's default; bfloat16 to "
                         "measure the candidate lower-precision path and its parity)")
    ap.add_argument("--real-fewest-questions", action="store_true",
                    help="time the 3-question cases first (a shorter run on a busy machine)")
    ap.add_argument("--real-sides", default="prepare,clinrag,llamacpp,exact,baseline,parity",
                    help="comma-separated sides of the real-size run (clinrag and baseline are required)")
    args = ap.parse_args()
    if args.real_size_only:
        result = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
        result["real_size"] = real_size(args)
        write(result, args.out)
        print(json.dumps({k: v for k, v in result["real_size"].items() if k not in ("per_case", "case_seconds")}))
        return 0
    import torch
    from clinrag.plugins.generators.hf import HFGenerator

    args.threads = args.threads or torch.get_num_threads()  # torch's own default, read before anything sets it
    if args.max_new_tokens is None:
        args.max_new_tokens = inspect.signature(HFGenerator).parameters["max_new_tokens"].default
    result = measure(args)
    if args.variant:
        print(f"== variant {VARIANT}", flush=True)
        var = measure(argparse.Namespace(**{**vars(args), **VARIANT}))
        result["variants"] = [{k: var[k] for k in ("torch_threads", "max_new_tokens", "speedup_vs_sequential",
                                                  "overhead_share", "tokens_equal", "questions_token_equal",
                                                  "baseline_total_seconds", "clinrag_total_seconds")}]
    result["command"] = "python benchmarks/bench_answer.py " + " ".join(sys.argv[1:])
    if args.real_size:
        result["real_size"] = real_size(args)
    elif args.out.exists():  # keep the last real-size figures (they carry their own command and date)
        previous = json.loads(args.out.read_text(encoding="utf-8")).get("real_size")
        if previous:
            result["real_size"] = previous
    write(result, args.out)
    print(json.dumps({k: result[k] for k in ("speedup_vs_sequential", "overhead_share", "tokens_equal",
                                              "questions_token_equal", "baseline_total_seconds",
                                              "clinrag_total_seconds", "load_average_1m")}))
    return 0


def write(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, suffix=".tmp", delete=False, encoding="utf-8") as fh:
        json.dump(result, fh, indent=2, ensure_ascii=False)
    os.chmod(fh.name, 0o644)
    Path(fh.name).replace(out)


def real_size(args: argparse.Namespace) -> dict:
    """The real-size run (``benchmarks/real_size.py``), each side in its own process."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from clinrag.core.defaults import MAX_NEW_TOKENS, TOP_K
    from real_size_summary import measure as measure_real

    opts = argparse.Namespace(cases=args.real_cases, parity_cases=args.parity_cases, index=args.real_index,
                              shared=SHARED, threads=args.real_threads, k=TOP_K, max_new_tokens=MAX_NEW_TOKENS,
                              rate_tokens=64, fewest_questions=args.real_fewest_questions,
                              sides=args.real_sides.split(","), raw_dir=args.real_raw_dir, dtype=args.real_dtype,
                              parity_dtypes=args.parity_dtypes)
    result = measure_real(opts)
    result["command"] = "python benchmarks/bench_answer.py " + " ".join(sys.argv[1:])
    result["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return result


def measure(args: argparse.Namespace) -> dict:
    """One full measurement (both sides, every case) at ``args.threads`` / ``args.max_new_tokens``."""

    import torch
    from clinrag.core.models.gguf import gguf_to_folder
    from clinrag.core.prompts import answer_messages
    from clinrag.plugins.generators.hf import HFGenerator
    from transformers import pipeline

    torch.set_num_threads(args.threads)
    if not (MODEL_DIR / "config.json").exists():
        if not GGUF.exists():
            raise SystemExit(f"{GGUF} missing: run `make models`")
        gguf_to_folder(GGUF, MODEL_DIR)

    cases = pick_cases(args)
    wanted = {p for _, c, _ in cases for ev in (c.evidence or []) for p in ev[: args.k]}
    passages = {}
    for corpus in {str(p) for _, _, p in cases}:
        passages.update(load_passages(Path(corpus), wanted))

    # float32: the exact path, whose tokens must equal the sequential baseline's (the real-size run measures the
    # default dtype and its parity)
    gen = HFGenerator(str(MODEL_DIR), max_new_tokens=args.max_new_tokens, device="cpu", dtype="float32")
    llm = gen.llm
    model, tok = llm.model, llm.tokenizer
    timer = ForwardTimer(model)
    pipe = pipeline("text-generation", model=model, tokenizer=tok, device="cpu")
    eos = llm.eos_ids()

    def baseline(case, reqs):
        ids = []
        for r in reqs:
            msgs = answer_messages(case, r.sub_question.text, r.hits, options=r.options, facts=r.sub_question.facts)
            out = pipe(msgs, max_new_tokens=args.max_new_tokens, do_sample=False, return_tensors=True)
            seq = list(out[0]["generated_token_ids"])
            prompt = llm.encode(msgs)
            assert seq[: len(prompt)] == prompt, "pipeline tokenised the prompt differently"
            new = seq[len(prompt):]
            ids.append(new[: next((j for j, t in enumerate(new) if t in eos), len(new))])
        return ids

    # Warm-up (first-call allocations) on a throwaway request, both paths.
    warm_case, warm_reqs = cases[0][1], requests_for(cases[0][1], passages, args.k)[:1]
    baseline(warm_case, warm_reqs)
    gen.answer(warm_case, warm_reqs)

    rows = []
    for n, (source, case, _) in enumerate(cases):
        reqs = requests_for(case, passages, args.k)
        order = ("baseline", "clinrag") if n % 2 == 0 else ("clinrag", "baseline")
        res = {}
        for side in order:
            timer.total = 0.0
            start = time.perf_counter()
            if side == "baseline":
                ids = baseline(case, reqs)
            else:
                gens = gen.answer(case, reqs)
                ids = llm.last_token_ids
            seconds = time.perf_counter() - start
            res[side] = {"seconds": seconds, "model_seconds": timer.total, "ids": ids}
        b, c = res["baseline"], res["clinrag"]
        equal = [x == y for x, y in zip(b["ids"], c["ids"])]
        rows.append({
            "case_id": case.id, "source": source, "questions": len(reqs),
            "prompt_tokens": llm.last_stats.prompt_tokens, "shared_prefix_tokens": llm.last_stats.shared_prefix_tokens,
            "completion_tokens": [len(x) for x in c["ids"]],
            "clinrag_prefill_seconds": round(llm.last_stats.prefill_seconds, 3),
            "clinrag_decode_seconds": round(llm.last_stats.decode_seconds, 3),
            "baseline_seconds": round(b["seconds"], 3), "clinrag_seconds": round(c["seconds"], 3),
            "baseline_outside_model_share": round(1 - b["model_seconds"] / b["seconds"], 4),
            "clinrag_outside_model_share": round(1 - c["model_seconds"] / c["seconds"], 4),
            "speedup": round(b["seconds"] / c["seconds"], 2),
            "tokens_equal": all(equal), "questions_token_equal": sum(equal),
            "first_difference": None if all(equal) else next(
                {"question": i + 1, "token_index": next((j for j, (p, q) in enumerate(zip(x, y)) if p != q),
                                                        min(len(x), len(y))),
                 "baseline": tok.decode(x), "clinrag": tok.decode(y)}
                for i, (x, y) in enumerate(zip(b["ids"], c["ids"])) if x != y),
            "answers": [g.text for g in gens],
        })
        print(f"{case.id:28s} q={len(reqs)} baseline {b['seconds']:6.2f}s clinrag {c['seconds']:6.2f}s "
              f"×{rows[-1]['speedup']:.2f} outside-model {rows[-1]['clinrag_outside_model_share']:.1%} "
              f"tokens_equal={rows[-1]['tokens_equal']}", flush=True)

    total_b = sum(r["baseline_seconds"] for r in rows)
    total_c = sum(r["clinrag_seconds"] for r in rows)
    model_c = sum((1 - r["clinrag_outside_model_share"]) * r["clinrag_seconds"] for r in rows)
    result = {
        "benchmark": "answer",
        "model": "SmolLM2-135M-Instruct (Q4_1 GGUF de-quantised to float32)",
        "device": "cpu", "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(), "torch": torch.__version__,
        "max_new_tokens": args.max_new_tokens, "passages_per_question": args.k,
        "cases": len(rows), "questions": sum(r["questions"] for r in rows),
        "baseline_total_seconds": round(total_b, 3), "clinrag_total_seconds": round(total_c, 3),
        "baseline_case_seconds_median": round(statistics.median(r["baseline_seconds"] for r in rows), 3),
        "clinrag_case_seconds_median": round(statistics.median(r["clinrag_seconds"] for r in rows), 3),
        "speedup_vs_sequential": round(total_b / total_c, 2),
        "overhead_share": round(1 - model_c / total_c, 4),
        "tokens_equal": all(r["tokens_equal"] for r in rows),
        "questions_token_equal": f"{sum(r['questions_token_equal'] for r in rows)}/{sum(r['questions'] for r in rows)}",
        "per_case": rows,
    }
    return result


if __name__ == "__main__":
    sys.exit(main())
