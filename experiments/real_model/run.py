"""The real-model experiment (#11): does a QLoRA-tuned Qwen2.5-0.5B-architecture model answer held-out cases better?

Every stage is a plain ``clinrag`` command (printed and appended to ``<run>/commands.sh``), each stage is skipped when
its output is complete, and the long stages (training, evaluation) resume after an interruption — so the whole
experiment is re-run, or continued in a later sitting, with the same one line::

    python experiments/real_model/run.py all            # prepare → audit → extend → train → evaluate
    python experiments/real_model/run.py prepare        # or any one stage: audit, extend, train, train-novocab, evaluate
    python experiments/real_model/run.py status         # what is done, what is left

Inputs: the shared data (``../shared/data``), the committed split ``docs/eval-results/splits/real-model-v1.json``,
the stand-in from ``make models`` and the full-corpus index (``.cache/full-index``, built by the ``index`` stage).
Derived case files (sub-sets of the shared data) live under ``runs/real-model-v1/data`` and are never committed.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = Path(REPO.parent / "shared" / "data")
SPLIT = REPO / "docs" / "eval-results" / "splits" / "real-model-v1.json"
RUN = REPO / "runs" / "real-model-v1"  # a link into the per-machine cache: a re-laid work tree keeps the run
STANDIN = REPO / ".cache" / "models" / "qwen2.5-coder-0.5b-instruct"
INDEX = REPO / ".cache" / "full-index"
CLINRAG = str(Path(sys.executable).parent / "clinrag")
HERE = Path(__file__).resolve().parent

#: Training mix (cases per set, drawn with SEED from each set's train part): ~600 examples, ~330k tokens. The
#: issue allows up to ~600k; on these 2 shared cores QLoRA measured ~70-100 tokens/s, so this is the budget that
#: trains in about an hour.
MIX = {"medquad_multi_dev": 40, "pubmedqa_dev": 200, "casimedicos": 200}
#: Eval-loss cases per set, drawn from the train parts' remaining cases (never from a held-out part).
EVAL_MIX = {"medquad_multi_dev": 2, "pubmedqa_dev": 8, "casimedicos": 8}
SEED = 0


def ensure_run_dir() -> None:
    """``runs/real-model-v1`` links to ``~/.cache/clinrag/experiments/real-model-v1``, outside the work tree, so
    checkpoints and evaluation records survive a new checkout and the next sitting resumes them."""
    from clinrag.core.io import cache_dir

    home = cache_dir() / "experiments" / RUN.name
    if RUN.is_symlink() or not RUN.exists():
        home.mkdir(parents=True, exist_ok=True)
        if not RUN.is_symlink():
            RUN.parent.mkdir(parents=True, exist_ok=True)
            RUN.symlink_to(home, target_is_directory=True)


def run(cmd: list[str]) -> None:
    line = " ".join(shlex.quote(str(c)) for c in cmd).replace(str(REPO) + "/", "")
    print(f"$ {line}", flush=True)
    RUN.mkdir(parents=True, exist_ok=True)
    with (RUN / "commands.sh").open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    subprocess.run(cmd, check=True, cwd=REPO)


def write_cases(path: Path, cases: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for c in cases:
            fh.write(json.dumps(c.model_dump(exclude_none=True), ensure_ascii=False) + "\n")
    tmp.replace(path)


def prepare() -> None:
    """Held-out and training case files from the committed split (derived data: under runs/, never committed)."""
    from clinrag.core.splits import split_cases

    rng = random.Random(SEED)
    train_mix, eval_mix = [], []
    for name in MIX:
        train = split_cases(SPLIT, name, "train", DATA)
        held = split_cases(SPLIT, name, "heldout", DATA)
        write_cases(RUN / "data" / f"{name}-heldout.jsonl", held)
        pool = sorted(train, key=lambda c: c.id)
        rng.shuffle(pool)
        train_mix += pool[: MIX[name]]
        eval_mix += pool[MIX[name]: MIX[name] + EVAL_MIX[name]]
    write_cases(RUN / "data" / "train-mix.jsonl", train_mix)
    write_cases(RUN / "data" / "eval-mix.jsonl", eval_mix)
    print(f"train-mix: {len(train_mix)} cases, eval-mix: {len(eval_mix)} cases → {RUN / 'data'}")


def index() -> None:
    if not (INDEX / "manifest.json").exists():
        run([CLINRAG, "index", "build", str(DATA / "corpus" / "medical_passages.jsonl"), "--out", str(INDEX)])


def audit() -> None:
    out = RUN / "audit"
    if not (out / "audit.json").exists():
        run([CLINRAG, "vocab", "audit", str(RUN / "data" / "train-mix.jsonl"), "--tokenizer", "qwen2.5",
             "--out", str(out)])


def train(config: str = "qlora.yaml", out: str = "tuned") -> None:
    """QLoRA SFT; resumes from the last checkpoint when a previous run was interrupted."""
    folder = RUN / out
    if (folder / "metrics.json").exists():
        return
    resume = ["--resume", "true"] if (folder / "checkpoints").exists() else []
    run([CLINRAG, "finetune", "--config", str(HERE / config), *resume])


#: The shipped run (committed): the adapter in bf16 with its tokenizer and records, and the training report.
SHIPPED = REPO / "docs" / "eval-results" / RUN.name
#: Files of the training output that ship beside the adapter weights (the rest — checkpoints, event files — stay).
SHIP_FILES = ("adapter_config.json", "clinrag_training.json", "added_tokens_manifest.json", "tokenizer.json",
              "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json", "config.resolved.yaml")
TRAIN_REPORT = ("metrics.json", "report.md", "loss.png")


def ship(out: str = "tuned") -> None:
    """Copy the finished adapter into ``docs/eval-results/real-model-v1/adapter`` with its weights cast to bf16 (the
    issue's ≤ 40 MB), and the training report beside it. Refuses an unfinished run (no ``metrics.json``)."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    src = RUN / out
    if not (src / "metrics.json").exists():
        sys.exit(f"{src}: training has not finished (no metrics.json); run `python {Path(__file__).name} train`")
    dest = SHIPPED / "adapter"
    dest.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(src / "adapter_model.safetensors"))
    # bf16 halves the file; PEFT casts adapter weights back to the base's dtype when it loads them.
    save_file({k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tensors.items()},
              str(dest / "adapter_model.safetensors"), metadata={"format": "pt"})
    for name in SHIP_FILES:
        if (src / name).exists():
            shutil.copy2(src / name, dest / name)
    # The trainer records the base as this machine's resolved cache path; ship the portable name `make models` gives.
    config = json.loads((dest / "adapter_config.json").read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = str(STANDIN.relative_to(REPO))
    (dest / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    training = SHIPPED / "training"
    training.mkdir(parents=True, exist_ok=True)
    for name in TRAIN_REPORT:
        if (src / name).exists():
            shutil.copy2(src / name, training / name)
    size = (dest / "adapter_model.safetensors").stat().st_size / 2**20
    print(f"shipped {src.relative_to(REPO)} → {dest.relative_to(REPO)} ({size:.1f} MiB of bf16 weights)")


#: (set, held-out file, max_new_tokens, arms besides base+RAG / tuned+RAG)
EVAL_SETS = {"pubmedqa_dev": 32, "casimedicos": 32, "medquad_multi_dev": 64}


def evaluate(adapter: str = "tuned", sets: tuple[str, ...] = tuple(EVAL_SETS)) -> None:
    """Base vs tuned, with retrieval, on each held-out set (resumable: finished cases are skipped). PubMedQA also
    gets the no-retrieval arms. The main run evaluates the *shipped* adapter (bf16, what users get); each finished
    set's ``metrics.json`` and ``report.md`` are copied beside it."""
    import shutil

    path = SHIPPED / "adapter" if adapter == "tuned" else RUN / adapter
    if not (path / "adapter_config.json").exists():
        sys.exit(f"{path}: no adapter; run the train (and ship) stages first")
    for name in sets:
        out = RUN / "eval" / f"{name}-{adapter}"
        if not ((out / "report.md").exists() and (out / "metrics.json").exists()):
            no_retrieval = "--no-retrieval-arm" if name == "pubmedqa_dev" else "--skip-no-retrieval-arm"
            run([CLINRAG, "evaluate", str(RUN / "data" / f"{name}-heldout.jsonl"), "--index", str(INDEX),
                 "--strategies", "decomposition", "--generator", "hf", "--model", str(STANDIN),
                 "--adapter", str(path), "--max-new-tokens", str(EVAL_SETS[name]), no_retrieval,
                 "--out", str(out)])
        if adapter == "tuned":
            dest = SHIPPED / "eval" / name
            dest.mkdir(parents=True, exist_ok=True)
            for file in [out / "metrics.json", out / "report.md", *out.glob("*.png")]:  # the report's charts
                shutil.copy2(file, dest / file.name)


def stage_status() -> None:
    for name, path in [("prepare", RUN / "data" / "train-mix.jsonl"), ("index", INDEX / "manifest.json"),
                       ("audit", RUN / "audit" / "audit.json"), ("extend", RUN / "extended" / "config.json"),
                       ("train", RUN / "tuned" / "metrics.json"), ("train-novocab", RUN / "tuned-novocab" / "metrics.json")]:
        print(f"{name:14s} {'done' if path.exists() else 'todo'}  {path.relative_to(REPO)}")


STAGES = {"prepare": prepare, "index": index, "audit": audit, "train": train, "ship": ship, "evaluate": evaluate,
          "status": stage_status}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=[*STAGES, "all"])
    args = parser.parse_args()
    ensure_run_dir()
    if args.stage == "all":
        for name in ("prepare", "index", "audit", "train", "ship", "evaluate"):
            STAGES[name]()
    else:
        STAGES[args.stage]()


if __name__ == "__main__":
    main()
