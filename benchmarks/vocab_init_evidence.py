"""Evidence for the default init of new embedding rows: per-character loss on held-out clinical text, before training.

SmolLM2-135M-Instruct (real weights; its 49k vocabulary fragments clinical terms more than Qwen's) is extended with the
terms `clinrag vocab audit` recommends on CasiMedicos train (audited with SmolLM2's own tokenizer), once per init
(mean, hf, random). Each variant and the original model score the CasiMedicos dev scenarios and answers. Losses are
mapped back to characters (total NLL / characters of the scored text) so different tokenizations compare fairly.
Every text is scored after the same fixed prefix, encoded separately, so its first token is predicted too.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/vocab_init_evidence.py [--cases 55] [--out FILE.json]

Needs `make models` (SmolLM2 GGUF); the de-quantised folder is cached in .cache/models/smollm2-hf.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLINRAG_SHARED_DATA") or next(
    (p for p in (REPO.parent / "shared" / "data", REPO.parents[1] / "shared" / "data") if p.exists()),
    REPO.parent / "shared" / "data"))
GGUF = REPO / ".cache" / "models" / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER = REPO / ".cache" / "models" / "smollm2-hf"
PREFIX = "Clinical case:\n"


def smollm2_folder() -> Path:
    if not (FOLDER / "config.json").exists():
        from clinrag.core.io import atomic_dir_write
        from clinrag.core.models.loading import load_model, load_tokenizer

        model, tok = load_model(GGUF, dtype="float32", eval_mode=False), load_tokenizer(GGUF, prepare=False)
        atomic_dir_write(FOLDER, lambda tmp: (model.save_pretrained(tmp), tok.save_pretrained(tmp)), kind="vocab-evidence")
    return FOLDER


def clip(text: str, limit: int = 1200) -> str:
    """The same characters for every variant: at most ``limit``, cut at a space."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0]


def score(model, tok, texts: list[str], new_ids: set[int]) -> dict[str, float]:
    import torch

    nll = 0.0
    chars = 0
    tokens = 0
    new_nll, new_n = 0.0, 0
    prefix = list(tok(PREFIX, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        for text in texts:
            ids = list(tok(text, add_special_tokens=False)["input_ids"])
            scored = text
            inp = torch.tensor([prefix + ids])
            logp = torch.log_softmax(model(inp).logits[0, :-1].float(), dim=-1)
            targets = inp[0, 1:]
            tok_nll = -logp[torch.arange(len(targets)), targets][len(prefix) - 1:]
            nll += float(tok_nll.sum())
            chars += len(scored)
            tokens += len(ids)
            for t, v in zip(ids, tok_nll.tolist()):
                if t in new_ids:
                    new_nll += v
                    new_n += 1
    return {"nll_total": nll, "nll_per_char": nll / chars, "bits_per_char": nll / chars / math.log(2), "nll_per_token": nll / tokens,
            "tokens": tokens, "chars": chars,
            "nll_on_new_tokens": (new_nll / new_n) if new_n else None, "new_token_occurrences": new_n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=55, help="dev cases to score (55 = all)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "vocab_init_evidence.json")
    args = ap.parse_args(argv)

    import torch
    from clinrag.core.cases import load_cases
    from clinrag.finetune.vocab_audit import audit
    from clinrag.finetune.vocab_extend import extend_model, extend_tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    folder = smollm2_folder()
    tok = AutoTokenizer.from_pretrained(folder)
    train = load_cases(SHARED / "sft" / "casimedicos_en_train.jsonl")
    dev = load_cases(SHARED / "sft" / "casimedicos_en_dev.jsonl")[: args.cases]
    texts = [clip(t) for t in [c.clinical_scenario for c in dev] + [a for c in dev for a in (c.answers or [])]]
    result = audit(train, tok)
    terms = result["recommended"]
    print(f"{len(terms)} terms recommended for SmolLM2: {terms}", file=sys.stderr)
    rows = []
    t0 = time.time()
    base = AutoModelForCausalLM.from_pretrained(folder).eval()
    rows.append({"variant": "original", **score(base, tok, texts, set())})
    print(rows[-1], f"{time.time() - t0:.0f}s", file=sys.stderr)
    for init in ("mean", "hf", "random"):
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        new_tok, plan = extend_tokenizer(tok, terms)
        info = extend_model(model, tok, new_tok, plan, init)
        rows.append({"variant": f"extended, init={init}", **score(model, new_tok, texts, {f.id for f in plan.forms}),
                     "added_ids": len(plan.forms), **info})
        print(rows[-1]["variant"], rows[-1]["nll_per_char"], f"{time.time() - t0:.0f}s", file=sys.stderr)
    payload = {"model": "SmolLM2-135M-Instruct (GGUF Q4_1, de-quantised)", "train_cases": len(train),
               "dev_cases": len(dev), "texts": len(texts), "terms": terms, "warning": result["warning"],
               "rows": rows, "seconds": round(time.time() - t0, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print("| variant | NLL/char (nats) | bits/char | NLL/token | tokens | Δ total NLL per term occurrence | "
          "NLL at new-token positions (n) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base_total = rows[0]["nll_total"]
    for r in rows:
        n = r["new_token_occurrences"]
        delta = f"{(r['nll_total'] - base_total) / n:+.2f}" if n else "—"
        new = "—" if r["nll_on_new_tokens"] is None else f"{r['nll_on_new_tokens']:.2f} ({n})"
        print(f"| {r['variant']} | {r['nll_per_char']:.4f} | {r['bits_per_char']:.4f} | {r['nll_per_token']:.3f} | "
              f"{r['tokens']} | {delta} | {new} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
