"""Audit which domain terms a tokenizer fragments, and recommend the few worth a new token.

A new token costs a new embedding row that must be learnt from the fine-tuning data. It pays off only when the
term fragments badly (many short, meaningless pieces) AND occurs often enough, in enough distinct contexts, for
that row to be learnt. Ordinary words that split into a few meaningful sub-words ("cardio" + "myopathy") are
better kept: the model already composes them. Symbolic strings (SMILES, formulas, sequences, dosage codes) have
no such composition, so they lean to "add". Thresholds are configurable; defaults are justified in
docs/vocabulary.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clinrag.core.cases import Case, load_cases

from .terms import add_glossary, as_row, case_texts, classify, mine_terms, read_glossary


@dataclass
class AuditThresholds:
    """A term is added only if all hold (symbolic strings: halved counts, fewer pieces)."""

    min_count: int = 20  # occurrences in the data
    min_contexts: int = 10  # distinct cases it occurs in
    min_pieces: int = 4  # tokens for " term" (mid-sentence form)
    max_chars_per_piece: float = 3.5  # below this the pieces are fragments, not meaningful sub-words
    symbolic_min_pieces: int = 3
    min_rows: int = 1000  # fewer cases than this: warn that the data set is too small for any addition


def recommend(row: dict[str, Any], th: AuditThresholds) -> tuple[str, str]:
    """("add" | "keep", reason) for one audited term."""
    kind, pieces, cpp = row["kind"], row["pieces_space"], row["chars_per_piece"]
    count, contexts = row["count"], row["contexts"]
    symbolic = kind == "symbolic"
    min_count = th.min_count // 2 if symbolic else th.min_count
    min_ctx = th.min_contexts // 2 if symbolic else th.min_contexts
    min_pieces = th.symbolic_min_pieces if symbolic else th.min_pieces
    if pieces <= 1:
        return "keep", "already one token"
    if pieces < min_pieces:
        return "keep", f"only {pieces} pieces (< {min_pieces})"
    if not symbolic and cpp >= th.max_chars_per_piece:
        return "keep", (f"splits into {pieces} meaningful sub-words ({cpp:.1f} chars/piece ≥ "
                        f"{th.max_chars_per_piece}) the model already composes")
    if count < min_count:
        return "keep", f"fragments ({pieces} pieces) but only {count} occurrences (< {min_count}) to learn a new row"
    if contexts < min_ctx:
        return "keep", f"fragments ({pieces} pieces) but in only {contexts} cases (< {min_ctx} distinct contexts)"
    lean = "symbolic string, no sub-word meaning; " if symbolic else ""
    return "add", f"{lean}{pieces} pieces ({cpp:.1f} chars/piece), {count} occurrences in {contexts} cases"


def _drop_covered(rows: list[dict[str, Any]]) -> None:
    """A multi-word term that contains an accepted shorter term is fragmented *because of* that term: adding the
    shorter one already fixes it, so the longer one is kept (e.g. "antitransglutaminase IgA")."""
    accepted: list[list[str]] = []
    for r in sorted((r for r in rows if r["recommendation"] == "add"), key=lambda r: (len(r["key"].split()), r["key"])):
        words = r["key"].split()
        covering = next((a for a in accepted if any(words[i:i + len(a)] == a for i in range(len(words)))), None)
        if covering is not None:
            r["recommendation"], r["reason"] = "keep", f"covered by adding {' '.join(covering)!r}"
        else:
            accepted.append(words)


def audit(cases: Sequence[Case], tokenizer: Any, *, glossary: Sequence[str] = (),
          thresholds: AuditThresholds | None = None, min_candidate_count: int = 3) -> dict[str, Any]:
    """Mine, measure and recommend; returns the ``audit.json`` payload (rows sorted by recommendation, then
    by the tokens an addition would save)."""
    th = thresholds or AuditThresholds()
    stats = mine_terms(cases)
    if glossary:
        add_glossary(stats, glossary, cases)
    chosen = [st for st in stats.values() if st.count >= min_candidate_count or st.from_glossary]
    rows = [as_row(st) for st in chosen]
    if rows:
        space = tokenizer([" " + r["term"] for r in rows], add_special_tokens=False)["input_ids"]
        bare = tokenizer([r["term"] for r in rows], add_special_tokens=False)["input_ids"]
    else:
        space, bare = [], []
    for r, s_ids, b_ids in zip(rows, space, bare):
        r["kind"] = classify(r["term"])
        r["pieces_space"], r["pieces_bare"] = len(s_ids), len(b_ids)
        r["tokens_space"] = tokenizer.convert_ids_to_tokens(s_ids)
        r["chars_per_piece"] = round(len(r["term"]) / max(len(s_ids), 1), 3)
        r["pieces_per_char"] = round(len(s_ids) / max(len(r["term"]), 1), 3)
        r["recommendation"], r["reason"] = recommend(r, th)
        r["tokens_saved_estimate"] = r["count"] * (len(s_ids) - 1)
    _drop_covered(rows)
    rows.sort(key=lambda r: (r["recommendation"] != "add", -r["tokens_saved_estimate"], r["key"]))
    n_cases = len(cases)
    warning = None
    if n_cases < th.min_rows:
        warning = (f"only {n_cases} cases (< {th.min_rows}): too small a data set to learn new embedding rows "
                   f"reliably; prefer keeping the tokenizer and fine-tuning (LoRA) on the existing pieces. Terms "
                   f"passing the per-term criteria are listed for reference only.")
    return {
        "n_cases": n_cases,
        "n_candidates": len(rows),
        "thresholds": asdict(th),
        "warning": warning,
        "recommended": [r["term"] for r in rows if r["recommendation"] == "add"],
        "terms": rows,
    }


def domain_bpe_proposals(cases: Sequence[Case], tokenizer: Any, rows: Sequence[dict[str, Any]], *,
                         vocab_size: int = 4000) -> dict[str, Any]:
    """Train a small byte-level BPE on the case text (HF ``tokenizers``) and list the whole words it learns as
    single tokens that the base tokenizer splits — an incremental vocabulary, as in cross-lingual vocabulary
    adaptation — then filter them through the same criteria (a proposal is only added if its audit row says so)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    texts = [t for case in cases for t in case_texts(case)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts, trainer=trainer)
    by_key = {r["key"]: r for r in rows}
    proposed = []
    for token, _ in sorted(bpe.get_vocab().items(), key=lambda kv: kv[1]):
        text = bpe.decoder.decode([token])
        word = text.strip()
        if not text.startswith(" ") or len(word) < 4 or not word.isalpha():
            continue
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= 1:
            continue
        row = by_key.get(word.lower())
        proposed.append({"term": word, "in_audit": row is not None,
                         "recommendation": row["recommendation"] if row else "keep",
                         "reason": row["reason"] if row else "a sub-word piece or a rare word (not a mined candidate)"})
    return {"vocab_size": vocab_size, "n_proposed": len(proposed),
            "added": [p["term"] for p in proposed if p["recommendation"] == "add"], "proposed": proposed}


def projected_savings(cases: Sequence[Case], tokenizer: Any, terms: Sequence[str]) -> dict[str, Any]:
    """Tokens needed for all case text before and after adding ``terms`` (really extending a copy of the
    tokenizer and re-encoding, so it counts exactly what fine-tuning would see)."""
    texts = [t for case in cases for t in case_texts(case)]
    before = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    if not terms:
        return {"tokens_before": before, "tokens_after": before, "saved": 0, "saved_fraction": 0.0}
    from .vocab_extend import extend_tokenizer

    new_tok, _ = extend_tokenizer(tokenizer, terms)
    after = sum(len(ids) for ids in new_tok(texts, add_special_tokens=False)["input_ids"])
    return {"tokens_before": before, "tokens_after": after, "saved": before - after,
            "saved_fraction": round((before - after) / before, 5) if before else 0.0}


def render_markdown(result: dict[str, Any], *, limit: int = 60) -> str:
    lines = ["# Vocabulary audit", ""]
    lines.append(f"- cases: {result['n_cases']}; candidate terms: {result['n_candidates']}; "
                 f"recommended additions: {len(result['recommended'])}")
    sav = result.get("savings")
    if sav:
        lines.append(f"- projected tokens on the data: {sav['tokens_before']} → {sav['tokens_after']} "
                     f"(saves {sav['saved']}, {100 * sav['saved_fraction']:.2f}%)")
    if result["warning"]:
        lines.append(f"- **warning**: {result['warning']}")
    dom = result.get("domain_bpe")
    if dom:
        lines.append(f"- domain BPE ({dom['vocab_size']} tokens trained on the cases): {dom['n_proposed']} whole "
                     f"words it makes one token that the base tokenizer splits; passing the criteria: "
                     f"{', '.join(dom['added']) or 'none'}")
    th = result["thresholds"]
    lines.append(f"- thresholds: {th}")
    lines += ["", "| term | kind | count | cases | pieces ' t' | pieces 't' | chars/piece | pieces | recommendation |",
              "|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in result["terms"][:limit]:
        pieces = " ".join(p.replace("|", "\\|") for p in r["tokens_space"])
        lines.append(f"| {r['term']} | {r['kind']} | {r['count']} | {r['contexts']} | {r['pieces_space']} | "
                     f"{r['pieces_bare']} | {r['chars_per_piece']:.2f} | `{pieces}` | "
                     f"**{r['recommendation']}**: {r['reason']} |")
    if len(result["terms"]) > limit:
        lines.append(f"\n({len(result['terms']) - limit} more rows in audit.json)")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    """Fragmentation (pieces per character) against frequency, recommended terms marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    colors = {"word": "tab:blue", "abbreviation": "tab:orange", "symbolic": "tab:green", "multiword": "tab:gray"}
    for kind, color in colors.items():
        rows = [r for r in result["terms"] if r["kind"] == kind]
        if rows:
            ax.scatter([max(r["count"], 1) for r in rows], [r["pieces_per_char"] for r in rows], s=10,
                       alpha=0.5, color=color, label=kind)
    chosen = [r for r in result["terms"] if r["recommendation"] == "add"]
    if chosen:
        ax.scatter([r["count"] for r in chosen], [r["pieces_per_char"] for r in chosen], s=60, facecolors="none",
                   edgecolors="red", linewidths=1.5, label="recommended")
        for r in chosen[:15]:
            ax.annotate(r["term"], (r["count"], r["pieces_per_char"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    th = result["thresholds"]
    ax.axvline(th["min_count"], color="red", linestyle=":", linewidth=1)
    ax.axhline(1 / th["max_chars_per_piece"], color="red", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("occurrences in the data (log)")
    ax.set_ylabel("pieces per character (' term' form)")
    ax.set_title(f"Fragmentation vs frequency ({result['n_cases']} cases)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_audit(data: Sequence[str | Path], out: str | Path, *, tokenizer: str = "qwen2.5",
              glossary: str | Path | None = None, thresholds: AuditThresholds | None = None,
              domain_bpe: int = 0, bad_rows: Any = None) -> dict[str, Any]:
    """Load cases, audit, and write ``audit.json``, ``audit.md``, ``fragmentation.png`` and ``terms.txt`` into
    ``out`` (atomically)."""
    from clinrag.core.io import atomic_dir_write

    cases: list[Case] = []
    for path in data:
        cases.extend(load_cases(path, bad_rows=bad_rows))
    from clinrag.core.models.loading import load_tokenizer

    tok = load_tokenizer(tokenizer, prepare=False)
    result = audit(cases, tok, glossary=read_glossary(glossary) if glossary else (), thresholds=thresholds)
    result["tokenizer"] = tokenizer
    result["data"] = [str(p) for p in data]
    result["savings"] = projected_savings(cases, tok, result["recommended"])
    if domain_bpe:
        result["domain_bpe"] = domain_bpe_proposals(cases, tok, result["terms"], vocab_size=domain_bpe)

    def write(tmp: Path) -> None:
        (tmp / "audit.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "audit.md").write_text(render_markdown(result), encoding="utf-8")
        header = ["# terms recommended by `clinrag vocab audit` (one per line; '#' lines are comments)"]
        if result["warning"]:
            header.append(f"# WARNING: {result['warning']}")
        (tmp / "terms.txt").write_text("\n".join(header + result["recommended"]) + "\n", encoding="utf-8")
        plot(result, tmp / "fragmentation.png")

    atomic_dir_write(Path(out), write, kind="vocab-audit", legacy=("audit.json", "terms.txt"))
    return result
