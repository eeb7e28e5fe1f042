"""The real-model experiment (#11): does a QLoRA-tuned Qwen2.5-0.5B-architecture model answer held-out cases better?

Every stage is a plain ``clinrag`` command (printed and appended to ``<run>/commands.sh``), each stage is skipped when
its output is complete, and the long stages (training, evaluation) resume after an interruption — so the whole
experiment is re-run, or continued in a later sitting, with the same one line::

    python experiments/real_model/run.py all            # the main run, then the vocabulary ablation
    python experiments/real_model/run.py prepare        # or any one stage (see STAGES; `status` lists them)
    python experiments/real_model/run.py status         # what is done, what is left
    python experiments/real_model/run.py evaluate-bf16  # #15's second gate: the held-out arms in bfloat16-weights

The main run: prepare → index → audit → train → evaluate. The vocabulary ablation (tuned with vs without the
extended vocabulary, at half the main budget, on PubMedQA): extend → train-vocab → train-novocab → evaluate-vocab.

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
#: The vocabulary ablation trains on half the mix: the first half of each set's seeded draw (a subset of the main
#: mix), with the same eval-loss set, seed and settings (qlora.yaml, only --data/--out/--model changed).
HALF_MIX = RUN / "data" / "train-mix-half.jsonl"
EXTENDED = RUN / "extended"
ABLATION = {"tuned-half-vocab": True, "tuned-half-novocab": False}  # output folder → with the extended vocabulary


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


def draw() -> tuple[dict[str, list], list, list, list]:
    """(held-out cases per set, training mix, eval-loss mix, half training mix), drawn from the committed split."""
    from clinrag.core.splits import split_cases

    rng = random.Random(SEED)
    held, train_mix, eval_mix, half_mix = {}, [], [], []
    for name in MIX:
        train = split_cases(SPLIT, name, "train", DATA)
        held[name] = split_cases(SPLIT, name, "heldout", DATA)
        pool = sorted(train, key=lambda c: c.id)
        rng.shuffle(pool)
        train_mix += pool[: MIX[name]]
        half_mix += pool[: MIX[name] // 2]
        eval_mix += pool[MIX[name]: MIX[name] + EVAL_MIX[name]]
    return held, train_mix, eval_mix, half_mix


def prepare() -> None:
    """Held-out and training case files from the committed split (derived data: under runs/, never committed)."""
    held, train_mix, eval_mix, half_mix = draw()
    for name, cases in held.items():
        write_cases(RUN / "data" / f"{name}-heldout.jsonl", cases)
    write_cases(RUN / "data" / "train-mix.jsonl", train_mix)
    write_cases(RUN / "data" / "eval-mix.jsonl", eval_mix)
    write_cases(HALF_MIX, half_mix)
    print(f"train-mix: {len(train_mix)} cases (half: {len(half_mix)}), eval-mix: {len(eval_mix)} cases → "
          f"{RUN / 'data'}")


def prepare_half() -> None:
    """The half mix alone (a run prepared before the ablation existed keeps its other files untouched); it must be a
    subset of the training mix on disk, i.e. drawn from the same split and data."""
    if HALF_MIX.exists():
        return
    _, _, _, half_mix = draw()
    text = (RUN / "data" / "train-mix.jsonl").read_text(encoding="utf-8")
    trained = {json.loads(line)["id"] for line in text.split("\n") if line}  # not splitlines(): U+2028 in text
    missing = [c.id for c in half_mix if c.id not in trained]
    if missing:
        sys.exit(f"the half mix is not a subset of {RUN / 'data' / 'train-mix.jsonl'} ({len(missing)} cases, e.g. "
                 f"{missing[0]}): the split or the shared data changed since `prepare`; rerun `prepare`")
    write_cases(HALF_MIX, half_mix)
    print(f"train-mix-half: {len(half_mix)} cases → {HALF_MIX}")


def index() -> None:
    if not (INDEX / "manifest.json").exists():
        run([CLINRAG, "index", "build", str(DATA / "corpus" / "medical_passages.jsonl"), "--out", str(INDEX)])


def audit() -> None:
    out = RUN / "audit"
    if not (out / "audit.json").exists():
        run([CLINRAG, "vocab", "audit", str(RUN / "data" / "train-mix.jsonl"), "--tokenizer", "qwen2.5",
             "--out", str(out)])


def extend() -> None:
    """The stand-in extended with the audit's terms.txt: the terms it accepts, or — when it accepts none (fewer
    cases than its floor) — the candidates that pass its per-term criteria, listed there for reference. The
    ablation asks whether extension pays on this data either way. Redone when terms.txt lists other terms."""
    from clinrag.finetune.vocab_extend import read_terms

    audit_dir = RUN / "audit"
    result = json.loads((audit_dir / "audit.json").read_text(encoding="utf-8"))
    terms = read_terms(audit_dir / "terms.txt")
    manifest = EXTENDED / "added_tokens_manifest.json"
    if manifest.exists() and set(json.loads(manifest.read_text(encoding="utf-8"))["terms"]) == set(terms):
        return
    if result.get("warning"):
        print(f"note: the audit accepts no term ({result['warning']}); the ablation extends the stand-in with its "
              f"best candidates: {', '.join(terms)}")
    run([CLINRAG, "vocab", "extend", "--model", str(STANDIN), "--terms", str(audit_dir / "terms.txt"),
         "--out", str(EXTENDED)])


def finetune(out: str, *overrides: str) -> None:
    """QLoRA SFT per qlora.yaml (plus ``overrides``); resumes from the last checkpoint after an interruption."""
    folder = RUN / out
    if (folder / "metrics.json").exists():
        return
    resume = ["--resume"] if (folder / "checkpoints").exists() else []
    run([CLINRAG, "finetune", "--config", str(HERE / "qlora.yaml"), *overrides, *resume])


def train() -> None:
    finetune("tuned")


def train_half(out: str) -> None:
    """Half the main budget (the half mix, one epoch: about half the optimizer steps); with the vocabulary, the
    extended stand-in and its manifest, whose new rows train in the input embedding and the untied LM head."""
    prepare_half()
    vocab = ["--model", str(EXTENDED), "--vocab-manifest", str(EXTENDED / "added_tokens_manifest.json")]
    finetune(out, "--data", str(HALF_MIX), "--out", str(RUN / out), *(vocab if ABLATION[out] else []))


def train_vocab() -> None:
    extend()  # nothing to do when the extended stand-in holds the audit's terms
    train_half("tuned-half-vocab")


def train_novocab() -> None:
    train_half("tuned-half-novocab")


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
                 # the reference precision, whatever the CPU default becomes (folders begun without it resume)
                 "--option", "dtype=float32", "--out", str(out)])
        if adapter == "tuned":
            dest = SHIPPED / "eval" / name
            dest.mkdir(parents=True, exist_ok=True)
            for file in [out / "metrics.json", out / "report.md", *out.glob("*.png")]:  # the report's charts
                shutil.copy2(file, dest / file.name)


def evaluate_bf16() -> None:
    """The speed issue's (#15) second quality gate: the ``evaluate`` stage's base+RAG and tuned+RAG arms again with
    weight-only bfloat16 (``--option dtype=bfloat16-weights``), then ``dtype_parity.py`` pairs each arm's cases
    with the float32 run's and writes ``<set>-tuned-bf16w/parity.json`` (difference and CI per metric). A set
    whose float32 evaluation has not finished is skipped with a note, so a partial reference is never compared.
    Each compared set's ``parity.json``, ``metrics.json`` and ``report.md`` are copied to ``eval-bf16w/<set>/``
    beside the shipped adapter."""
    import shutil

    for name, max_new_tokens in EVAL_SETS.items():
        if not (RUN / "eval" / f"{name}-tuned" / "metrics.json").exists():
            print(f"{name}: the float32 evaluation has not finished; run the evaluate stage first", flush=True)
            continue
        out = RUN / "eval" / f"{name}-tuned-bf16w"
        if not ((out / "report.md").exists() and (out / "metrics.json").exists()):
            run([CLINRAG, "evaluate", str(RUN / "data" / f"{name}-heldout.jsonl"), "--index", str(INDEX),
                 "--strategies", "decomposition", "--generator", "hf", "--model", str(STANDIN),
                 "--adapter", str(SHIPPED / "adapter"), "--max-new-tokens", str(max_new_tokens),
                 "--option", "dtype=bfloat16-weights", "--skip-no-retrieval-arm", "--out", str(out)])
        run([sys.executable, str(HERE / "dtype_parity.py"), str(RUN / "eval" / f"{name}-tuned"), str(out),
             "--out", str(out / "parity.json")])
        dest = SHIPPED / "eval-bf16w" / name
        dest.mkdir(parents=True, exist_ok=True)
        for file in (out / "parity.json", out / "metrics.json", out / "report.md"):
            shutil.copy2(file, dest / file.name)


VOCAB_EVAL = RUN / "eval" / "pubmedqa_dev-vocab-ablation"


def evaluate_vocab() -> None:
    """The ablation's arms on PubMedQA held-out, one run: base, tuned with and tuned without the extended vocabulary
    (both with retrieval), compared pairwise by paired bootstrap (``adapter vs adapter`` in metrics.json). Both
    adapters load onto the plain stand-in: the vocabulary adapter carries its new input and output rows whole."""
    if (VOCAB_EVAL / "report.md").exists() and (VOCAB_EVAL / "metrics.json").exists():
        return
    adapters = [arg for out in ABLATION for arg in ("--adapter", str(RUN / out))]
    run([CLINRAG, "evaluate", str(RUN / "data" / "pubmedqa_dev-heldout.jsonl"), "--index", str(INDEX),
         "--strategies", "decomposition", "--generator", "hf", "--model", str(STANDIN), *adapters,
         "--max-new-tokens", str(EVAL_SETS["pubmedqa_dev"]), "--skip-no-retrieval-arm", "--option", "dtype=float32",
         "--out", str(VOCAB_EVAL)])


def stage_status() -> None:
    evals = [RUN / "eval" / f"{name}-tuned" / "metrics.json" for name in EVAL_SETS]
    for name, paths in [("prepare", [RUN / "data" / "train-mix.jsonl"]), ("index", [INDEX / "manifest.json"]),
                        ("audit", [RUN / "audit" / "audit.json"]), ("train", [RUN / "tuned" / "metrics.json"]),
                        ("ship", [SHIPPED / "adapter" / "adapter_model.safetensors"]), ("evaluate", evals), ("extend", [EXTENDED / "added_tokens_manifest.json"]),
                        ("train-vocab", [RUN / "tuned-half-vocab" / "metrics.json"]),
                        ("train-novocab", [RUN / "tuned-half-novocab" / "metrics.json"]),
                        ("evaluate-vocab", [VOCAB_EVAL / "metrics.json"]),
                        ("evaluate-bf16", [RUN / "eval" / f"{name}-tuned-bf16w" / "parity.json" for name in EVAL_SETS])]:
        done = sum(p.exists() for p in paths)
        state = "done" if done == len(paths) else f"{done}/{len(paths)} " if done else "todo"
        print(f"{name:14s} {state:5s} {paths[-1].relative_to(REPO)}")


STAGES = {"prepare": prepare, "index": index, "audit": audit, "train": train, "ship": ship, "evaluate": evaluate,
          "extend": extend, "train-vocab": train_vocab, "train-novocab": train_novocab,
          "evaluate-vocab": evaluate_vocab, "evaluate-bf16": evaluate_bf16, "status": stage_status}
ALL = ("prepare", "index", "audit", "train", "ship", "evaluate", "extend", "train-vocab", "train-novocab", "evaluate-vocab")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=[*STAGES, "all"])
    args = parser.parse_args()
    ensure_run_dir()
    if args.stage == "all":
        for name in ALL:
            STAGES[name]()
    else:
        STAGES[args.stage]()


if __name__ == "__main__":
    main()
