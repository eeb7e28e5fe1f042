"""``clinrag augment``: LLM paraphrases of scenarios and questions, kept only when the facts survive.

A paraphrase may reword but must not change what the case says. Each candidate is checked against its original
(:func:`check_paraphrase`): every number (with its unit when it has one) is still there, every protected term
(drug-like words, words of the options and of the reference answers, and optional extra terms such as a vocabulary
manifest's) is still there, the question count is unchanged, and the text is neither empty, identical nor wildly
longer or shorter. Options, answer keys, answers and evidence are copied verbatim, so the answer key stays intact.
Kept paraphrases become new cases with ``meta.augmented_from`` = the original id; :mod:`clinrag.finetune.data`
keeps such rows on the training side only, so they never leak into eval.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinrag.core import prompts
from clinrag.core.cases import Case, load_cases, split_numbered

_NUM = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)\s*(%|[a-zA-Zµμ°/]+(?:/[a-zA-Z0-9^]+)*)?")
UNITS = {"mg", "g", "kg", "mcg", "µg", "μg", "ug", "ng", "ml", "l", "dl", "mmol", "mol", "meq", "iu", "u", "mmhg",
         "cm", "mm", "m", "%", "bpm", "min", "h", "hours", "days", "weeks", "months", "years", "°c", "c", "kcal",
         "mg/dl", "g/dl", "gr/dl", "mmol/l", "mg/l", "ng/ml", "µg/l", "mg/kg", "ml/min", "l/min", "/min", "x10^9/l",
         "meq/l", "u/l", "iu/l", "pg/ml", "mcg/kg", "mg/day", "year-old", "year"}
DRUG_SUFFIXES = ("mab", "nib", "pril", "sartan", "olol", "statin", "cillin", "mycin", "micin", "floxacin", "azole",
                 "dipine", "parin", "xaban", "gatran", "tidine", "prazole", "sone", "olone", "lukast", "triptan",
                 "vir", "cycline", "formin", "gliptin", "gliflozin", "glutide", "thiazide", "semide", "tropin",
                 "caine", "amine", "pam", "lam", "done", "phylline", "barbital")
_STOP = {"the", "and", "with", "for", "that", "this", "which", "what", "from", "have", "has", "was", "were", "are",
         "his", "her", "their", "there", "following", "most", "likely", "patient", "does", "not", "none", "all",
         "above", "option", "options", "answer", "correct", "these", "those", "into", "than", "then", "after",
         "before", "been", "being", "other", "only", "also", "should", "would", "could", "will"}


def numbers_with_units(text: str) -> Counter:
    """Multiset of ``"value unit"`` (unit lower-cased, only when it is a known unit) found in ``text``."""
    out: Counter = Counter()
    for m in _NUM.finditer(text):
        value = m.group(1).replace(",", ".")
        unit = (m.group(2) or "").lower()
        out[f"{value} {unit}".strip() if unit in UNITS else value] += 1
    return out


def drug_like_terms(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z-]{4,}", text) if w.lower().endswith(DRUG_SUFFIXES)}


def protected_terms(case: Case, extra: Sequence[str] = ()) -> set[str]:
    """Terms a paraphrase of ``case`` must keep: drug-like words in the scenario/questions, words of the options and
    reference answers that also occur in the scenario/questions, and ``extra`` terms that occur there."""
    source = case.clinical_scenario + "\n" + "\n".join(case.questions)
    low = source.lower()
    terms = drug_like_terms(source)
    refs: list[str] = []
    for opts in case.options or []:
        refs += list((opts or {}).values())
    refs += [a for a in (case.answers or []) if a]
    for word in re.findall(r"[A-Za-z][A-Za-z-]{5,}", " ".join(refs)):
        w = word.lower()
        if w not in _STOP and re.search(rf"\b{re.escape(w)}\b", low):
            terms.add(w)
    terms |= {t.lower() for t in extra if t and t.lower() in low}
    return terms


@dataclass
class CheckResult:
    ok: bool
    problems: list[str] = field(default_factory=list)


def check_paraphrase(original: Case, scenario: str, questions: Sequence[str], *, extra_terms: Sequence[str] = ()) -> CheckResult:
    """Does the paraphrase keep every number (+unit), protected term and question of ``original``?"""
    problems: list[str] = []
    if len(questions) != original.n_questions:
        problems.append(f"{len(questions)} questions instead of {original.n_questions}")
    if not scenario.strip() or any(not q.strip() for q in questions):
        problems.append("empty scenario or question")
    new_text = scenario + "\n" + "\n".join(questions)
    old_text = original.clinical_scenario + "\n" + "\n".join(original.questions)
    if re.sub(r"\s+", " ", new_text).strip().lower() == re.sub(r"\s+", " ", old_text).strip().lower():
        problems.append("identical to the original")
    ratio = len(new_text) / max(1, len(old_text))
    if not 0.5 <= ratio <= 2.0:
        problems.append(f"length ratio {ratio:.2f} outside [0.5, 2]")
    missing_nums = numbers_with_units(old_text) - numbers_with_units(new_text)
    extra_nums = numbers_with_units(new_text) - numbers_with_units(old_text)
    if missing_nums:
        problems.append(f"numbers/units lost: {', '.join(sorted(missing_nums))}")
    if extra_nums:
        problems.append(f"numbers/units added: {', '.join(sorted(extra_nums))}")
    low = new_text.lower()
    lost = sorted(t for t in protected_terms(original, extra_terms) if not re.search(rf"\b{re.escape(t)}\b", low))
    if lost:
        problems.append(f"terms lost: {', '.join(lost)}")
    return CheckResult(not problems, problems)


def parse_paraphrase(text: str) -> tuple[str, list[str]] | None:
    """``Scenario: … Questions: 1. … 2. …`` → (scenario, questions); None when the reply lacks that shape."""
    m = re.search(r"scenario\s*:\s*(.*?)\s*questions?\s*:\s*(.*)", text, flags=re.IGNORECASE | re.DOTALL)
    if not m:
        return None
    scenario = m.group(1).strip().strip("*").strip()
    questions = split_numbered(m.group(2).strip())
    return scenario, [q.strip() for q in questions if q.strip()]


def augment_cases(cases: Sequence[Case], llm: Any, *, n: int = 1, extra_terms: Sequence[str] = (),
                  max_new_tokens: int = 768, log: Callable[[str], None] | None = None) -> tuple[list[Case], dict[str, Any]]:
    """Paraphrase each case ``n`` times with ``llm`` (a :class:`~clinrag.plugins.generators.base.ChatLLM`); return the
    kept paraphrases (new ids ``<id>-aug<j>``) and counts including why candidates were rejected."""
    originals = [c for c in cases if not c.meta.get("augmented_from")]
    convs = [prompts.case_paraphrase_messages(c, j) for c in originals for j in range(n)]
    outs = llm.chat(convs, max_new_tokens=max_new_tokens) if convs else []
    kept: list[Case] = []
    reasons: Counter = Counter()
    for idx, gen in enumerate(outs):
        case, j = originals[idx // n], idx % n
        parsed = parse_paraphrase(getattr(gen, "text", str(gen)))
        if parsed is None:
            reasons["unparseable reply"] += 1
            continue
        scenario, questions = parsed
        check = check_paraphrase(case, scenario, questions, extra_terms=extra_terms)
        if not check.ok:
            for p in check.problems:
                reasons[p.split(":")[0]] += 1
            if log:
                log(f"rejected {case.id} paraphrase {j}: {'; '.join(check.problems)}")
            continue
        data = case.model_dump()
        data.update(id=f"{case.id}-aug{j}", clinical_scenario=scenario, questions=list(questions),
                    meta={**case.meta, "augmented_from": case.id})
        kept.append(Case.model_validate(data))
    return kept, {"candidates": len(outs), "kept": len(kept), "rejected": len(outs) - len(kept),
                  "reasons": dict(reasons)}


def augment_file(cases_path: str | Path, out: str | Path, *, generator: str = "hf", model: str | None = None,
                 n: int = 1, extra_terms: Sequence[str] = (),
                 log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Read cases, paraphrase them with the named generator plugin's LLM, write originals + kept paraphrases."""
    from clinrag.core.errors import PluginError
    from clinrag.core.io import OutputError, atomic_file_write
    from clinrag.plugins.generators.base import get_generator

    if Path(out).resolve() == Path(cases_path).resolve():
        raise OutputError(f"--out {out}: is the input case file; name a new file")
    cases = load_cases(cases_path)
    # Decoding is greedy: the n variants differ by their instruction (see paraphrase_messages), not by sampling.
    options: dict[str, Any] = {"model": model} if model else {}
    gen = get_generator(generator, **options)
    if gen.llm is None:
        raise PluginError(f"generator {generator!r} has no LLM to paraphrase with (use an LLM generator, e.g. hf)")
    kept, stats = augment_cases(cases, gen.llm, n=n, extra_terms=extra_terms, log=log)
    atomic_file_write(Path(out), "".join(json.dumps(c.model_dump(exclude_none=True), ensure_ascii=False) + "\n"
                                         for c in list(cases) + kept))
    return stats
