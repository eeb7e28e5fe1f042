"""SFT throughput: clinrag's trainer (TRL SFTTrainer, packed/padding-free batches, completion-only loss) vs the seeds'
recipe (HF ``Trainer`` with every row padded to ``max_length``), same model, data, LoRA config, batch size and
number of optimizer steps, measured in the same run; plus peak RSS of qlora vs lora (each run in its own process).

tokens/s counts real (non-padding) tokens per second of training-step wall time (evaluation excluded).

    python benchmarks/bench_train.py                      # tiny random Qwen2 (real Qwen2.5 tokenizer) + SmolLM2-135M
    python benchmarks/bench_train.py --model DIR --steps 20 --max-length 2048   # a real model, e.g. on a GPU

Writes ``benchmarks/results/train.json`` (``tokens_per_s_ratio_vs_padded`` + the raw figures).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = Path(os.environ.get("CLINRAG_SHARED_DATA", REPO.parent / "shared" / "data"))
SMOLLM2_DIR = REPO / ".cache" / "models" / "smollm2-hf"  # `make models` (the GGUF converted once)
MODEL_NOTES = {
    "tiny_qwen2": "tiny random Qwen2 (hidden 64, 2 layers, 151,936-row tied embedding, real Qwen2.5 tokenizer)",
    "smollm2_135m": "SmolLM2-135M-Instruct (real weights, GGUF de-quantised to float32; 49,152-row vocabulary)",
}


def default_data() -> Path:
    casi = SHARED / "sft" / "casimedicos_en_train.jsonl"
    return casi if casi.exists() else REPO / "examples" / "demo" / "cases.jsonl"


def build_tiny_qwen2(out: Path) -> Path:
    import torch
    from clinrag.core.models.qwen_tokenizer import (
        QWEN25_EMBEDDING_ROWS,
        load_qwen25_tokenizer,
    )
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=QWEN25_EMBEDDING_ROWS, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151645, pad_token_id=151643)
    Qwen2ForCausalLM(config).save_pretrained(out, safe_serialization=True)
    load_qwen25_tokenizer().save_pretrained(out)
    return out


def worker_clinrag(a: argparse.Namespace) -> dict:
    from clinrag.finetune.config import load_config
    from clinrag.finetune.sft import run_finetune

    cfg = load_config(None, {"model": a.model, "data": a.data, "out": a.out, "mode": a.mode, "max_steps": a.steps,
                             "train.batch_size": a.batch_size, "train.max_length": a.max_length,
                             "data.eval_fraction": 0, "peft.r": 8, "peft.alpha": 16, "train.logging_steps": 1,
                             "train.eval_before": "false", "data.limit": a.limit, "train.warmup_ratio": 0})
    m = run_finetune(cfg, log=lambda s: print(s, file=sys.stderr))
    return {"tokens_per_s": m["tokens_per_s"], "train_tokens": m["train_tokens"], "train_seconds": m["train_seconds"],
            "peak_rss_mb": m["peak_rss_mb"], "peak_cuda_mb": m["peak_cuda_mb"], "steps": m["global_step"]}


def worker_padded(a: argparse.Namespace) -> dict:
    """The seeds' recipe: HF Trainer, each row = chat-templated prompt+completion padded to max_length, prompt masked."""
    import torch
    from clinrag.core.cases import load_cases
    from clinrag.finetune.data import build_examples
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    tok = AutoTokenizer.from_pretrained(a.model)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    cases = load_cases(a.data)[: a.limit or None]
    rows, _ = build_examples(cases)
    feats = []
    for r in rows:
        prompt = tok.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
        full = tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=False)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        ids = tok(full, add_special_tokens=False)["input_ids"][: a.max_length]
        labels = [-100] * min(len(p_ids), len(ids)) + ids[len(p_ids):]
        pad = a.max_length - len(ids)
        feats.append({"input_ids": ids + [tok.pad_token_id] * pad, "attention_mask": [1] * len(ids) + [0] * pad,
                      "labels": labels + [-100] * pad})
    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16 if cuda else torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))

    class Count(TrainerCallback):
        seconds, t0 = 0.0, None

        def on_step_begin(self, *args, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, *args, **kw):
            self.seconds += time.perf_counter() - self.t0

    real = {"tokens": 0}

    def collate(batch):
        real["tokens"] += sum(sum(b["attention_mask"]) for b in batch)
        return {k: torch.tensor([b[k] for b in batch]) for k in batch[0]}

    timer = Count()
    args = TrainingArguments(output_dir=a.out, max_steps=a.steps, per_device_train_batch_size=a.batch_size,
                             learning_rate=2e-4, report_to="none", save_strategy="no", logging_steps=1,
                             use_cpu=not cuda, bf16=cuda, seed=42, disable_tqdm=True, remove_unused_columns=False)
    Trainer(model=model, args=args, train_dataset=Dataset.from_list(feats), data_collator=collate,
            callbacks=[timer]).train()
    import resource

    return {"tokens_per_s": round(real["tokens"] / timer.seconds, 2), "train_tokens": real["tokens"],
            "train_seconds": round(timer.seconds, 3),
            "padded_tokens": a.steps * a.batch_size * a.max_length,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "steps": a.steps}


def run_worker(kind: str, a: argparse.Namespace, model: str, out: Path, mode: str = "lora") -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--model", model, "--data", str(a.data), "--steps",
           str(a.steps), "--batch-size", str(a.batch_size), "--max-length", str(a.max_length), "--out", str(out),
           "--mode", mode, "--limit", str(a.limit)]
    print("$ " + " ".join(cmd[2:4] + [mode]), flush=True)
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if res.returncode:
        sys.stderr.write(res.stderr[-4000:])
        raise SystemExit(f"worker {kind}/{mode} failed")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", choices=["clinrag", "padded"])
    p.add_argument("--model")
    p.add_argument("--data", default=str(default_data()))
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--limit", type=int, default=64, help="use the first N cases (0 = all)")
    p.add_argument("--mode", default="lora")
    p.add_argument("--out")
    p.add_argument("--results", type=Path, default=HERE / "results" / "train.json")
    p.add_argument("--no-smollm2", dest="with_smollm2", action="store_false",
                   help="skip the SmolLM2-135M run (on by default when .cache/models/smollm2-hf exists)")
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if a.worker:
        result = worker_clinrag(a) if a.worker == "clinrag" else worker_padded(a)
        print(json.dumps(result))
        return 0
    import torch

    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        tmp = Path(tmp)
        models = [("given", a.model)] if a.model else [("tiny_qwen2", str(build_tiny_qwen2(tmp / "tiny-qwen2")))]
        if not a.model and a.with_smollm2 and (SMOLLM2_DIR / "config.json").exists():
            models.append(("smollm2_135m", str(SMOLLM2_DIR)))
        for name, model in models:
            print(f"== {name}", flush=True)
            clin = run_worker("clinrag", a, model, tmp / name / "clinrag-lora", "lora")
            padded = run_worker("padded", a, model, tmp / name / "padded", "lora")
            qlora = run_worker("clinrag", a, model, tmp / name / "clinrag-qlora", "qlora")
            runs[name] = {
                "model": MODEL_NOTES.get(name, model),
                "clinrag_lora": clin, "padded_hf_trainer_lora": padded, "clinrag_qlora": qlora,
                "tokens_per_s_ratio_vs_padded": round(clin["tokens_per_s"] / padded["tokens_per_s"], 3),
                "peak_rss_ratio_qlora_vs_lora": round(qlora["peak_rss_mb"] / clin["peak_rss_mb"], 3),
            }
            print(f"   ratio {runs[name]['tokens_per_s_ratio_vs_padded']}", flush=True)
    first = next(iter(runs.values()))
    result = {
        "what": "SFT tokens/s (real tokens per training-step second): clinrag SFTTrainer (bfd packing, completion-only "
                "loss, LM head on label positions off CUDA) vs HF Trainer with rows padded to max_length (the seeds' "
                "recipe), same model, data, LoRA, batch size and steps; peak RSS qlora vs lora",
        "headline": "tokens_per_s_ratio_vs_padded is the lowest ratio over the models run",
        "data": os.path.relpath(a.data, REPO), "cases": a.limit, "steps": a.steps, "batch_size": a.batch_size,
        "max_length": a.max_length,
        "device": "cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores, {platform.machine()})",
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "runs": runs,
        "tokens_per_s_ratio_vs_padded": min(r["tokens_per_s_ratio_vs_padded"] for r in runs.values()),
        "peak_rss_mb_qlora": first["clinrag_qlora"]["peak_rss_mb"], "peak_rss_mb_lora": first["clinrag_lora"]["peak_rss_mb"],
        "peak_rss_ratio_qlora_vs_lora": first["peak_rss_ratio_qlora_vs_lora"],
        "target_ratio": 1.5,
        "command": "python benchmarks/bench_train.py " + " ".join(sys.argv[1:]),
    }
    out = a.results
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, suffix=".tmp", delete=False, encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
    os.chmod(fh.name, 0o644)
    Path(fh.name).replace(out)
    print(json.dumps({k: result[k] for k in ("tokens_per_s_ratio_vs_padded", "peak_rss_mb_qlora", "peak_rss_mb_lora")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
