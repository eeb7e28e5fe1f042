"""How often SmolLM2-135M-Instruct's query-translation replies are usable, per LLM strategy.

Runs every LLM strategy (and ``decomposition`` with ``refine``) with the real SmolLM2-135M-Instruct on the
demo cases and the first MedQuAD dev cases, and counts per strategy the LLM calls made, the replies that
parsed into usable queries, and the fallbacks (calls whose reply was unusable → original question kept). Translation only:
no retrieval or answering. Writes ``benchmarks/results/strategy_parsing.json``.

Usage: ``python benchmarks/bench_strategy_parsing.py [N_MEDQUAD_CASES]`` (default 2).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLINRAG_SHARED_DATA", REPO.parent / "shared" / "data"))
MODEL = REPO / ".cache" / "models" / "smollm2-hf"
GGUF = REPO / ".cache" / "models" / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
# Default options, with replies capped at 64 new tokens so the run fits a shared 2-core CPU (~10 min).
SPECS = [("multi_query", {"n": 3, "max_new_tokens": 64}), ("rag_fusion", {"n": 3, "max_new_tokens": 64}),
         ("step_back", {"max_new_tokens": 48}), ("hyde", {"max_new_tokens": 64}),
         ("decomposition", {"refine": True, "max_new_tokens": 64})]


def main(n_medquad: int) -> None:
    import torch
    from clinrag.core.cases import load_cases
    from clinrag.core.models.gguf import gguf_to_folder
    from clinrag.plugins.generators.hf import HFChatLLM
    from clinrag.plugins.strategies import LLMBudget, get_strategy

    torch.set_num_threads(1)  # a shared small CPU box: one thread is much faster than two competing ones
    if not (MODEL / "config.json").exists():
        gguf_to_folder(GGUF, MODEL)
    llm = HFChatLLM(str(MODEL))
    cases = load_cases(REPO / "examples" / "demo" / "cases.jsonl")
    cases += load_cases(SHARED / "cases" / "medquad_multi_dev.jsonl")[:n_medquad]
    rows = []
    for name, opts in SPECS:
        strategy = get_strategy(name, **opts)
        calls = fallbacks = 0
        start = time.perf_counter()
        for case in cases:
            t = strategy.translate(case, llm, LLMBudget())
            calls += t.usage.llm_calls
            # one call per sub-question, except refine: one per input question (q3.1, q3.2 → one call, q3)
            failed = {sid.split(".")[0] for sid in t.fallbacks} if name == "decomposition" else set(t.fallbacks)
            fallbacks += len(failed)
        seconds = time.perf_counter() - start
        rows.append({"strategy": name, "options": opts, "cases": len(cases), "llm_calls": calls,
                     "fallbacks": fallbacks, "usable_rate": round(1 - fallbacks / calls, 3) if calls else None,
                     "seconds": round(seconds, 1)})
        print(json.dumps(rows[-1]), flush=True)
    out = REPO / "benchmarks" / "results" / "strategy_parsing.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"model": "SmolLM2-135M-Instruct (Q4_1 GGUF, de-quantised)", "rows": rows},
                              indent=2), encoding="utf-8")
    tmp.rename(out)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
