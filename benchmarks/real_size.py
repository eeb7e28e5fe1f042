"""Answering speed at the real model size: whole cases with the 0.5B Qwen stand-in, four ways, one run.

Every side answers the same shared MedQuAD cases end to end — query translation (the default strategy), dense
retrieval from an index at the default k, the answers and the case summary — with the same GGUF-derived weights,
greedy, at the user's default torch thread count, the generator's default token limit:

* ``clinrag``: ``--generator hf`` with its default options (on a CPU with native bf16: bfloat16 weights mapped from
  the conversion cache; answers + summary in one batched decode sharing the scenario prefix);
* ``exact``: the same with ``dtype=float32`` (the exact path: its tokens must equal the baseline's);
* ``baseline``: the seeds' way: float32, ``transformers.pipeline`` once per sub-question and once for the summary;
* ``llamacpp``: llama.cpp on the same GGUF file (``benchmarks/llamacpp_llm.py``), one sequence per sub-question
  decoded in parallel, prompt prefix reused, same threads; ``null`` with the error when it cannot run.

Each side runs in its own process (load time, peak RSS and one side's memory do not leak into another's), after a
warm-up. ``peak_rss_mb`` is read right after the timed cases; the decode-rate probe that follows (every row of the
first case to the full token count, no EOS) reports its own ``peak_rss_mb_after_rate_probe``. ``quality_parity``: the share of rows (answers and summaries) whose first 32 greedy tokens under the
default dtype equal float32's, over the timed cases plus ``--parity-cases`` more (answers capped at 32 tokens).
Run through ``python benchmarks/bench_answer.py --real-size`` (``--real-size-only`` keeps the SmolLM2 figures);
the orchestration and the reported figures are in ``real_size_summary.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GGUF = Path(os.environ.get("CLINRAG_STANDIN_GGUF",
                           "~/.cache/clinrag/gguf/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")).expanduser()
INDEX = REPO / ".cache" / "full-index"
PARITY_TOKENS = 32


def _cases(args):
    """The dev file's cases with 3–6 questions, in file order (``--fewest-questions``: fewest first, stable)."""
    from clinrag.core.cases import load_cases

    path = Path(args.shared) / "cases" / "medquad_multi_dev.jsonl"
    cases = [c for c in load_cases(path) if 3 <= len(c.questions) <= 6]
    return sorted(cases, key=lambda c: len(c.questions)) if args.fewest_questions else cases


def _setup(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def _rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _agent(generator, retriever, k: int):
    from clinrag.agent.context import AgentContext
    from clinrag.agent.run import Agent
    from clinrag.core import defaults
    from clinrag.plugins.strategies import get_strategy

    return Agent(AgentContext(retriever=retriever, generator=generator, strategy=get_strategy(defaults.STRATEGY),
                              k=k))


def _rows(resp) -> list[str]:
    return [sq.id for a in resp.answers for sq in a.sub_questions] + ["summary"]


def _preimport() -> None:
    """Imports are not load time: pull in what from_pretrained and the tokenizer would import on first use."""
    import transformers.models.qwen2.modeling_qwen2
    import transformers.models.qwen2.tokenization_qwen2  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401


def side_hf(args, dtype: str | None) -> dict:
    """``clinrag`` (dtype None: the generator's default) or ``exact`` (float32)."""
    import torch
    from clinrag.core.models.weight_only import weight_bytes
    from clinrag.plugins.generators.decoding import DecodeStats, greedy_generate
    from clinrag.plugins.generators.hf import HFGenerator
    from clinrag.retrieval.retriever import IndexRetriever

    _setup(args)
    _preimport()
    retriever = IndexRetriever(args.index)
    gen = HFGenerator(str(GGUF), dtype=dtype, max_new_tokens=args.max_new_tokens)
    start = time.perf_counter()
    model = gen.llm.model  # loads (conversion cache → folder → memory map)
    load_seconds = time.perf_counter() - start
    agent = _agent(gen, retriever, args.k)
    cases = _cases(args)[: args.cases]
    agent.answer(_one_question(cases[0]))  # warm-up
    out = {"load_seconds": round(load_seconds, 2), "dtype": _dtype_label(model), "cases": []}
    for case in cases:
        t0 = time.perf_counter()
        resp = agent.answer(case)
        seconds = time.perf_counter() - t0
        st = gen.llm.last_stats
        ids = gen.llm.last_token_ids
        out["cases"].append({"case_id": case.id, "questions": len(case.questions), "seconds": round(seconds, 3),
                             "rows": _rows(resp), "ids": ids, "completion_tokens": [len(i) for i in ids],
                             "max_new_tokens": args.max_new_tokens, "batch": st.batch,
                             "shared_prefix_tokens": st.shared_prefix_tokens, "prompt_tokens": st.prompt_tokens,
                             "prefill_seconds": round(st.prefill_seconds, 3),
                             "decode_seconds": round(st.decode_seconds, 3),
                             "summary": resp.summary, "answers": [a.answer for a in resp.answers]})
        print(f"[{args.side}] {case.id} q={len(case.questions)} rows={st.batch} {seconds:.1f}s", flush=True)
    out["peak_rss_mb"] = _rss_mb()  # the cases' peak: what the memory target is about
    # Decode rate without EOS (every row runs the full count): one row, then the first case's whole batch.
    prompts = [gen.llm.encode(c) for c in _conversations(gen, cases[0], retriever, args.k)]
    tok = gen.llm.tokenizer
    rates = {}
    for label, batch in (("batch_1", prompts[:1]), (f"batch_{len(prompts)}", prompts)):
        stats = DecodeStats()
        with torch.inference_mode():
            res = greedy_generate(model, batch, max_new_tokens=args.rate_tokens, eos_ids=[], pad_id=int(tok.pad_token_id),
                                  stats=stats)
        steps = max(len(r) for r in res) - 1  # the first token comes from the prefill
        rates[label] = {"tokens_per_s": round(sum(len(r) - 1 for r in res) / stats.decode_seconds, 2),
                        "steps_per_s": round(steps / stats.decode_seconds, 2), "rows": len(batch)}
    out["decode"] = rates
    out["weight_bytes_per_step"] = weight_bytes(model)  # every weight but the input embedding (a row lookup)
    out["peak_rss_mb_after_rate_probe"] = _rss_mb()
    return out


def _one_question(case):
    """A one-question copy of ``case`` for warming up (first-call allocations, thread pools)."""
    return case.model_copy(update={"id": f"{case.id}-warmup", "questions": case.questions[:1]})


def _conversations(gen, case, retriever, k: int):
    """The answer conversations + summary of ``case`` as the graph builds them (same sub-questions and hits)."""
    from clinrag.core import defaults
    from clinrag.core.prompts import summary_messages
    from clinrag.plugins.generators.base import AnswerRequest
    from clinrag.plugins.strategies import get_strategy
    from clinrag.plugins.strategies.base import LLMBudget
    from clinrag.retrieval.fusion import retrieve_fused

    tr = get_strategy(defaults.STRATEGY).translate(case, None, LLMBudget(None))
    reqs = [AnswerRequest(sq, case.questions[sq.question_index],
                          tuple(retrieve_fused(retriever, sq.queries, k, tr.fusion, rrf_k=tr.rrf_k)))
            for sq in tr.sub_questions]
    return [*gen.answer_conversations(case, reqs), summary_messages(case)]


def _dtype_label(model) -> str:
    """``float32``, ``bfloat16``, … or ``bfloat16-weights`` (bfloat16 weights, float32 activations)."""
    from clinrag.core.models.precision import BF16_WEIGHTS, dtype_name
    from clinrag.core.models.weight_only import has_bf16_weights

    return BF16_WEIGHTS if has_bf16_weights(model) else dtype_name(model.dtype)


def side_baseline(args) -> dict:
    """The seeds: float32, one ``pipeline()`` call per sub-question, one for the summary, after retrieval."""
    from clinrag.core.models.loading import load_causal_lm
    from clinrag.plugins.generators.hf import HFGenerator
    from clinrag.retrieval.retriever import IndexRetriever
    from transformers import pipeline

    _setup(args)
    _preimport()
    retriever = IndexRetriever(args.index)
    model, tok = load_causal_lm(str(GGUF), dtype="float32", device="cpu")
    pipe = pipeline("text-generation", model=model, tokenizer=tok, device="cpu")
    shim = HFGenerator(str(GGUF))  # its prompt builders only; its model is never loaded here
    eos = {int(model.generation_config.eos_token_id)}

    def run(case) -> tuple[list[list[int]], float]:
        t0 = time.perf_counter()
        ids = []
        for msgs in _conversations(shim, case, retriever, args.k):
            seq = list(pipe(msgs, max_new_tokens=args.max_new_tokens, do_sample=False,
                            return_tensors=True)[0]["generated_token_ids"])
            prompt = tok(tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False),
                         add_special_tokens=False)["input_ids"]
            new = seq[len(prompt):]
            ids.append(new[: next((j for j, t in enumerate(new) if t in eos), len(new))])
        return ids, time.perf_counter() - t0

    cases = _cases(args)[: args.cases]
    run(_one_question(cases[0]))  # warm-up
    out = {"cases": []}
    for case in cases:
        ids, seconds = run(case)
        out["cases"].append({"case_id": case.id, "seconds": round(seconds, 3), "ids": ids,
                             "completion_tokens": [len(i) for i in ids]})
        print(f"[baseline] {case.id} {seconds:.1f}s", flush=True)
    out["peak_rss_mb"] = _rss_mb()
    return out


def side_llamacpp(args) -> dict:
    import torch
    from clinrag.core.models.loading import load_tokenizer
    from clinrag.core.prompts import summary_messages
    from clinrag.retrieval.retriever import IndexRetriever

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from llamacpp_llm import LlamaCppGenerator, LlamaCppParallelLLM

    _setup(args)
    retriever = IndexRetriever(args.index)
    tok = load_tokenizer(str(GGUF))
    llm = LlamaCppParallelLLM(GGUF, tok, n_threads=torch.get_num_threads(), n_seq_max=16)
    gen = LlamaCppGenerator(llm, max_new_tokens=args.max_new_tokens)
    calls: list[tuple[bool, list[list[int]]]] = []
    chat = llm.chat

    def logged(conversations, **kw):
        res = chat(conversations, **kw)
        calls.append((len(conversations) == 1 and conversations[0] == summary_messages(case), llm.last_token_ids))
        return res

    llm.chat = logged
    agent = _agent(gen, retriever, args.k)
    cases = _cases(args)[: args.cases]
    case = _one_question(cases[0])
    agent.answer(case)  # warm-up
    out = {"load_seconds": round(llm.load_seconds, 2), "cases": []}
    for case in cases:
        calls.clear()
        t0 = time.perf_counter()
        resp = agent.answer(case)
        seconds = time.perf_counter() - t0
        summary = next(ids for is_summary, ids in calls if is_summary)
        answers = next(ids for is_summary, ids in calls if not is_summary)
        out["cases"].append({"case_id": case.id, "seconds": round(seconds, 3), "rows": _rows(resp),
                             "ids": [*answers, *summary]})
        print(f"[llamacpp] {case.id} {seconds:.1f}s", flush=True)
    out["peak_rss_mb"] = _rss_mb()
    prompts = [llm.encode(c) for c in _conversations(gen, cases[0], retriever, args.k)]
    rates = {}
    for label, batch in (("batch_1", prompts[:1]), (f"batch_{len(prompts)}", prompts)):
        eog = llm.lc.llama_vocab_is_eog
        llm.lc.llama_vocab_is_eog = lambda *_: False  # no EOS: every row runs the full count
        try:
            res = llm.generate_ids(batch, args.rate_tokens)
        finally:
            llm.lc.llama_vocab_is_eog = eog
        st = llm.last_stats
        rates[label] = {"tokens_per_s": round(sum(len(r) - 1 for r in res) / st.decode_seconds, 2),
                        "steps_per_s": round(st.decode_steps / st.decode_seconds, 2), "rows": len(batch)}
    out["decode"] = rates
    out["weight_bytes_per_step"] = _gguf_weight_bytes(GGUF)
    out["peak_rss_mb_after_rate_probe"] = _rss_mb()
    llm.close()
    return out


def _gguf_weight_bytes(path: Path) -> int:
    from gguf import GGUFReader

    return sum(int(t.n_bytes) for t in GGUFReader(str(path)).tensors if t.name != "token_embd.weight")


def side_parity(args) -> dict:
    """More rows for the quality gate: the clinrag side's dtype (and each of ``--parity-dtypes``) vs float32,
    batched, 32-token answers, on the cases after the timed ones. Each model is loaded once; float32 rows are
    decoded once per case."""
    from clinrag.plugins.generators.hf import HFGenerator
    from clinrag.retrieval.retriever import IndexRetriever

    _setup(args)
    retriever = IndexRetriever(args.index)
    cases = _cases(args)[args.cases: args.cases + args.parity_cases]
    extra = [d for d in (args.parity_dtypes or "").split(",") if d]
    out = {"cases": [], "dtypes": {}}
    gens = {"default": HFGenerator(str(GGUF), max_new_tokens=PARITY_TOKENS, dtype=args.dtype or None),
            "float32": HFGenerator(str(GGUF), max_new_tokens=PARITY_TOKENS, dtype="float32"),
            **{d: HFGenerator(str(GGUF), max_new_tokens=PARITY_TOKENS, dtype=d) for d in extra}}
    for case in cases:
        row = {"case_id": case.id}
        for name, gen in gens.items():
            convs = _conversations(gen, case, retriever, args.k)
            row[name], _ = gen.llm.generate_ids([gen.llm.encode(c) for c in convs], max_new_tokens=PARITY_TOKENS)
            out["dtypes"].setdefault(name, _dtype_label(gen.llm.model))
        out["cases"].append(row)
        print(f"[parity] {case.id} rows={len(row['default'])}", flush=True)
    return out


def copy_bandwidth_gbs(threads: int) -> float:
    """Memory traffic of a large tensor copy (bytes read + written per second, as STREAM's Copy counts it)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.empty(64 * 2**20), torch.ones(64 * 2**20)  # 256 MiB each, far beyond the caches
    a.copy_(b)
    best = float("inf")
    for _ in range(10):
        t0 = time.perf_counter()
        a.copy_(b)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.numel() * a.element_size() / best / 1e9


def side_prepare(args) -> dict:
    """The first command's one-time work (GGUF conversion, bf16 copy), so the timed sides load like later ones."""
    from clinrag.plugins.generators.hf import HFChatLLM

    t0 = time.perf_counter()
    for dtype in (args.dtype or None, "float32"):
        _ = HFChatLLM(str(GGUF), dtype=dtype).model
    return {"seconds": round(time.perf_counter() - t0, 1)}


SIDES = {"prepare": side_prepare, "clinrag": lambda a: side_hf(a, a.dtype or None), "exact": lambda a: side_hf(a, "float32"),
         "baseline": side_baseline, "llamacpp": side_llamacpp, "parity": side_parity}


def run_side(side: str, args, out_dir: Path) -> dict:
    out = out_dir / f"{side}.json"
    cmd = [sys.executable, __file__, "--side", side, "--out", str(out), "--cases", str(args.cases),
           "--parity-cases", str(args.parity_cases), "--index", str(args.index), "--shared", str(args.shared),
           "--threads", str(args.threads), "--k", str(args.k), "--max-new-tokens", str(args.max_new_tokens),
           "--rate-tokens", str(args.rate_tokens), "--dtype", getattr(args, "dtype", "") or "",
           "--parity-dtypes", getattr(args, "parity_dtypes", "") or ""] + (["--fewest-questions"] if args.fewest_questions else [])
    proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        return {"error": f"exit {proc.returncode}: {' | '.join(tail)}"}
    return json.loads(out.read_text(encoding="utf-8"))


def add_run_options(ap: argparse.ArgumentParser) -> None:
    """Options shared by the orchestrator (bench_answer.py) and the side processes; defaults are a user's."""
    from clinrag.core.defaults import MAX_NEW_TOKENS, TOP_K

    ap.add_argument("--threads", type=int, default=0, help="torch / llama.cpp threads (0: torch's default)")
    ap.add_argument("--k", type=int, default=TOP_K, help="passages per sub-question")
    ap.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS, help="answer and summary token limit")
    ap.add_argument("--rate-tokens", type=int, default=64, help="tokens per row of the decode-rate measurement")
    ap.add_argument("--dtype", default="",
                    help="dtype of the clinrag side (default: the hf generator's own default)")
    ap.add_argument("--parity-dtypes", default="",
                    help="comma-separated dtypes also compared with float32 on the parity cases (e.g. bfloat16)")
    ap.add_argument("--fewest-questions", action="store_true",
                    help="time the cases with the fewest questions (3) first instead of the file's first cases")


def worker_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", choices=sorted(SIDES), required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cases", type=int, default=3)
    ap.add_argument("--parity-cases", type=int, default=6)
    ap.add_argument("--index", type=Path, default=INDEX)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    add_run_options(ap)
    args = ap.parse_args(argv)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    result = SIDES[args.side](args)
    args.out.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
