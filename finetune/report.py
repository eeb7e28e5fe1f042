"""End-of-run report (loss curves, overfitting verdict, throughput) and option accuracy by log-likelihood.

The overfitting verdict reads the trainer's log history: eval loss that rises (by more than ``tolerance``, relative)
after its minimum while the training loss keeps falling is the signature of a small data set being memorised. The
best checkpoint (lowest eval loss) is what the output folder holds either way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clinrag.core import prompts


def loss_curves(log_history: Sequence[dict[str, Any]]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    train = [(int(h["step"]), float(h["loss"])) for h in log_history if "loss" in h and "step" in h]
    evals = [(int(h["step"]), float(h["eval_loss"])) for h in log_history if "eval_loss" in h and "step" in h]
    return train, evals


def _train_loss_near(train: list[tuple[int, float]], step: int, window: int = 3) -> float | None:
    """Mean of the last ``window`` logged train losses at or before ``step`` (single logs are noisy)."""
    upto = [v for s, v in train if s <= step][-window:]
    return sum(upto) / len(upto) if upto else None


def overfitting_verdict(log_history: Sequence[dict[str, Any]], *, tolerance: float = 0.02) -> dict[str, Any]:
    train, evals = loss_curves(log_history)
    if len(evals) < 2:
        return {"overfitting": None, "verdict": "not enough evaluations to judge overfitting "
                                                f"({len(evals)} eval point{'s' if len(evals) != 1 else ''})"}
    best_i = min(range(len(evals)), key=lambda i: evals[i][1])
    best_step, best = evals[best_i]
    last_step, last = evals[-1]
    t_best, t_last = _train_loss_near(train, best_step), _train_loss_near(train, last_step)
    rising = best_i < len(evals) - 1 and last > best * (1 + tolerance)
    train_falling = t_best is not None and t_last is not None and t_last < t_best
    if rising and train_falling:
        verdict = (f"overfitting: eval loss rose from {best:.4f} (step {best_step}) to {last:.4f} (step {last_step}) "
                   f"while train loss fell from {t_best:.4f} to {t_last:.4f}; the best checkpoint (step {best_step}) "
                   f"is the one kept")
        return {"overfitting": True, "verdict": verdict, "best_step": best_step}
    verdict = (f"no overfitting detected: best eval loss {best:.4f} at step {best_step}, last {last:.4f} at step "
               f"{last_step}")
    return {"overfitting": False, "verdict": verdict, "best_step": best_step}


def plot_series(log_history: Sequence[dict[str, Any]], *, eval_before: float | None = None
                ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """The (step, loss) points :func:`plot_losses` draws: the eval curve starts at step 0 when ``eval_before`` is known."""
    train, evals = loss_curves(log_history)
    if eval_before is not None and not any(step == 0 for step, _ in evals):
        evals = [(0, float(eval_before)), *evals]
    return train, evals


def plot_losses(log_history: Sequence[dict[str, Any]], path: Path, *, eval_before: float | None = None) -> None:
    """Train and eval loss per optimizer step; ``eval_before`` (the untrained model's eval loss) is drawn at step 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train, evals = plot_series(log_history, eval_before=eval_before)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if train:
        ax.plot(*zip(*train), label="train loss", color="tab:blue")
    if evals:
        ax.plot(*zip(*evals), label="eval loss", color="tab:orange", marker="o")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (completion tokens)")
    ax.set_title("train vs eval loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(log_history: Sequence[dict[str, Any]], metrics: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Write ``loss.png`` and ``report.md`` into ``folder``; returns the verdict."""
    folder = Path(folder)
    verdict = overfitting_verdict(log_history)
    plot_losses(log_history, folder / "loss.png", eval_before=metrics.get("eval_loss_before"))
    lines = ["# Fine-tuning report", "", f"**Verdict:** {verdict['verdict']}", "", "| metric | value |", "|---|---|"]
    for key in ("mode", "format", "train_examples", "eval_examples", "global_step", "epoch", "train_loss",
                "eval_loss_before", "eval_loss_after", "best_eval_loss", "best_checkpoint", "tokens_per_s",
                "train_tokens", "train_seconds", "peak_rss_mb", "peak_cuda_mb", "new_token_ids"):
        if metrics.get(key) is not None:
            lines.append(f"| {key} | {metrics[key]} |")
    for key in ("option_accuracy_before", "option_accuracy_after"):
        if metrics.get(key):
            m = metrics[key]
            lines.append(f"| {key} | {m['accuracy']:.3f} ({m['correct']}/{m['n']}; key-token only "
                         f"{m['accuracy_key']:.3f}) |")
    lines += ["", "![loss curves](loss.png)", "", "Notes: " + ("; ".join(metrics.get("notes", [])) or "none"), ""]
    (folder / "report.md").write_text("\n".join(lines), encoding="utf-8")
    (folder / "log_history.json").write_text(json.dumps(list(log_history), indent=1, default=str), encoding="utf-8")
    return verdict


# -- option accuracy ------------------------------------------------------------------------------------------------

def option_accuracy(model: Any, tokenizer: Any, cases: Sequence[Any], *, batch_options: bool = True) -> dict[str, Any]:
    """Multiple-choice accuracy by log-likelihood, with the prompt the graph uses (no passages).

    For every question with options and a key, each option is scored as the completion ``"KEY. option text"``
    (how the training targets begin): ``accuracy`` takes the option with the highest summed log-probability,
    ``accuracy_key`` only the log-probability of the completion's first token (the option key).
    """

    was_training = model.training
    model.eval()
    device = next(p for p in model.parameters()).device
    correct = correct_key = n = 0
    try:
        for case in cases:
            for i in range(case.n_questions):
                opts, key = case.reference("options", i), case.reference("answer_key", i)
                if not opts or key is None:
                    continue
                msgs = prompts.answer_messages(case, case.questions[i], [], options=opts)
                prompt_ids = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
                if isinstance(prompt_ids, dict) or hasattr(prompt_ids, "input_ids"):
                    prompt_ids = prompt_ids["input_ids"]
                prompt_ids = list(prompt_ids)
                keys = list(opts)
                comps = [tokenizer(f"{k}. {opts[k]}", add_special_tokens=False)["input_ids"] for k in keys]
                sums, firsts = _score_continuations(model, prompt_ids, comps, device)
                n += 1
                correct += keys[max(range(len(keys)), key=lambda j: sums[j])] == key
                correct_key += keys[max(range(len(keys)), key=lambda j: firsts[j])] == key
    finally:
        model.train(was_training)
    acc = correct / n if n else math.nan
    return {"accuracy": acc, "accuracy_key": correct_key / n if n else math.nan, "correct": correct,
            "correct_key": correct_key, "n": n}


def _score_continuations(model: Any, prompt_ids: list[int], comps: list[list[int]], device: Any) -> tuple[list[float], list[float]]:
    """Summed and first-token log-probabilities of each continuation; the shared prompt runs once (KV cache)."""
    import torch

    with torch.no_grad():
        out = model(input_ids=torch.tensor([prompt_ids], device=device), use_cache=True)
        first_logp = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        cache = out.past_key_values
        n, width = len(comps), max(map(len, comps))
        cache.batch_repeat_interleave(n)
        ids = torch.tensor([c + [0] * (width - len(c)) for c in comps], device=device)
        mask = torch.cat([torch.ones(n, len(prompt_ids), dtype=torch.long, device=device),
                          torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in comps], device=device)], dim=1)
        logits = model(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=True).logits.float()
        logp = torch.log_softmax(logits, dim=-1)
    sums, firsts = [], []
    for j, c in enumerate(comps):
        lp = [float(first_logp[c[0]])] + [float(logp[j, t - 1, c[t]]) for t in range(1, len(c))]
        sums.append(sum(lp))
        firsts.append(lp[0])
    return sums, firsts
