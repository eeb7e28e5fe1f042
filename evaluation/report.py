"""``report.md`` (tables, best arm per metric in bold, paired differences) and PNG charts from ``metrics.json``.

Charts: ``metrics_by_arm.png`` (one panel per metric group, a bar per arm) and ``cost_vs_quality.png``
(seconds per case against the headline quality metric). matplotlib runs on the Agg backend (no display).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .aggregate import metric_value
from .scoring import ANSWER_KEYS, RETRIEVAL_KEYS

#: Metrics where lower is better (cost); everything else is higher-is-better.
COST_KEYS = ("llm_calls_per_case", "tokens_per_case", "seconds_per_case_p50", "seconds_per_case_p95")
#: Metrics whose paired differences the report lists (metrics.json has every metric's).
REPORTED_DIFFS = ("hit@5", "ndcg@10", "token_f1", "rouge_l", "mcq_accuracy", "numeric_accuracy", "decision_accuracy",
                  "summary_rouge_l")
_LABELS = {"summary_rouge_l": "summary ROUGE-L", "one_answer_per_question": "one answer / question"}


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _table(arms: dict[str, Any], columns: list[tuple[str, Any, bool]]) -> list[str]:
    """A markdown table, one row per arm; the best value per column in bold (``lower`` for cost)."""
    best: dict[str, float] = {}
    for label, get, lower in columns:
        values = [v for v in (get(b) for b in arms.values()) if isinstance(v, (int, float))]
        if len(values) > 1 and len(set(values)) > 1:
            best[label] = min(values) if lower else max(values)
    lines = ["| arm | " + " | ".join(label for label, _, _ in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for name, block in arms.items():
        cells = []
        for label, get, _ in columns:
            v = get(block)
            cell = _fmt(v)
            cells.append(f"**{cell}**" if label in best and v == best[label] else cell)
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return lines


def _get(group: str, key: str) -> Any:
    return lambda b: (b.get(group) or {}).get(key)


def render_markdown(metrics: dict[str, Any], *, title: str = "Evaluation", command: str | None = None,
                    charts: list[str] | None = None) -> str:
    arms = metrics["arms"]
    lines = [f"# {title}", "", f"{metrics['cases']} cases, {metrics['questions']} questions, {len(arms)} arms. "
             "Metrics are means over the questions they apply to (n/a: no reference for them); "
             "the best arm per column is in **bold** (lowest for cost).", ""]
    if command:
        lines += ["```", command, "```", ""]
    if any(b.get("retrieval") for b in arms.values()):
        lines += ["## Retrieval", ""]
        lines += _table(arms, [(k, _get("retrieval", k), False) for k in RETRIEVAL_KEYS]) + [""]
    if any(b.get("answers") for b in arms.values()):
        lines += ["## Answers", ""]
        cols = [(k, _get("answers", k), False) for k in ANSWER_KEYS
                if any((b.get("answers") or {}).get(k) is not None for b in arms.values())]
        lines += _table(arms, cols) + [""]
    if any(b.get("decisions") for b in arms.values()):
        lines += ["Yes/no/maybe questions: how many answers committed to a decision, and to which one (an answer that "
                  "commits to none counts as wrong in decision accuracy).", ""]
        keys = ("questions", "given", "yes", "no", "maybe")  # counts, not scores: no "best" in bold
        lines += ["| arm | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
        lines += [f"| `{name}` | " + " | ".join(_fmt((b.get("decisions") or {}).get(k)) for k in keys) + " |"
                  for name, b in arms.items()] + [""]
    if any(b.get("summary") for b in arms.values()):
        lines += ["## Summary", ""] + _table(arms, [("ROUGE-L", _get("summary", "rouge_l"), False)]) + [""]
    lines += ["## Structure and cost", ""]
    cols = [("one answer / question", _get("structure", "one_answer_per_question"), False)]
    cols += [(k, _get("cost", k), True) for k in COST_KEYS]
    cols.append(("failed cases", lambda b: b.get("errors", 0), True))
    lines += _table(arms, cols) + [""]
    comps = [c for c in metrics.get("comparisons") or [] if c["metric"] in REPORTED_DIFFS]
    if comps:
        lines += ["## Paired differences (a − b)", "",
                  "95% paired bootstrap intervals over cases (cases resampled, questions of a case kept together). "
                  "An interval that contains 0 means the difference is within noise at this sample size.", "",
                  "| a | b | metric | diff | 95% CI | why |", "|---|---|---|---:|---|---|"]
        for c in comps:
            mark = " *" if c["significant"] else ""
            lines.append(f"| `{c['a']}` | `{c['b']}` | {_LABELS.get(c['metric'], c['metric'])} | "
                         f"{c['diff']:+.3f}{mark} | [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}] | {c['why']} |")
        lines += ["", "\\* the interval excludes 0. (recall@10 and MRR@10 differences are in metrics.json.)", ""]
    for chart in charts or []:
        lines += [f"![{chart}]({chart})", ""]
    return "\n".join(lines)


def headline_metric(metrics: dict[str, Any]) -> str | None:
    """The quality metric to plot against cost: nDCG@10 when retrieval was scored, else answer metrics."""
    for key in ("ndcg@10", "mcq_accuracy", "numeric_accuracy", "decision_accuracy", "token_f1", "rouge_l"):
        if any(metric_value(b, key) is not None for b in metrics["arms"].values()):
            return key
    return None


def render_charts(metrics: dict[str, Any], out: str | Path) -> list[str]:
    """Write the PNG charts into ``out``; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    arms = metrics["arms"]
    names = list(arms)
    groups = [("retrieval", RETRIEVAL_KEYS), ("answers", ANSWER_KEYS)]
    panels = [(g, [k for k in keys if any((arms[a].get(g) or {}).get(k) is not None for a in names)]) for g, keys in groups]
    panels = [(g, ks) for g, ks in panels if ks]
    if any(arms[a].get("summary") for a in names):
        panels.append(("summary", ["rouge_l"]))
    panels.append(("structure", ["one_answer_per_question"]))
    written = []
    fig, axes = plt.subplots(1, len(panels), figsize=(max(5.0, 1.2 * len(names) * len(panels)), 4.2), squeeze=False)
    width = 0.8 / max(len(names), 1)
    for ax, (group, keys) in zip(axes[0], panels):
        for i, name in enumerate(names):
            vals = [(arms[name].get(group) or {}).get(k) for k in keys]
            xs = [j + i * width for j in range(len(keys))]
            ax.bar(xs, [v if v is not None else 0.0 for v in vals], width, label=name)
        ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(keys))])
        ax.set_xticklabels([_LABELS.get(k, k) for k in keys], rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(group)
    axes[0][-1].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{metrics['cases']} cases, {metrics['questions']} questions")
    fig.tight_layout()
    fig.savefig(out / "metrics_by_arm.png", dpi=110)
    plt.close(fig)
    written.append("metrics_by_arm.png")

    key = headline_metric(metrics)
    if key is not None:
        fig, ax = plt.subplots(figsize=(6, 4.2))
        for name in names:
            x = arms[name]["cost"]["seconds_per_case_p50"]
            y = metric_value(arms[name], key)
            if x is None or y is None:
                continue
            ax.scatter([x], [y])
            ax.annotate(name, (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
        ax.set_xlabel("seconds per case (p50)")
        ax.set_ylabel(key)
        ax.set_title("cost vs quality")
        fig.tight_layout()
        fig.savefig(out / "cost_vs_quality.png", dpi=110)
        plt.close(fig)
        written.append("cost_vs_quality.png")
    return written
