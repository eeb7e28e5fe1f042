"""Mine candidate domain terms from training cases and classify them (word, abbreviation, symbolic, multi-word).

Candidates are counted case-insensitively (case variants folded under one key) with their surface variants,
total occurrences and the number of distinct cases they occur in — a new embedding row is learnt from the
contexts a term appears in, so "120 times in one case" is worth much less than "120 times in 60 cases".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinrag.core.cases import Case
from clinrag.core.io import text_lines

KINDS = ("word", "abbreviation", "symbolic", "multiword")

# A token is a whitespace-separated run; punctuation around it is stripped, brackets only when unbalanced
# (so "C(=O)O" keeps its parentheses but "(ALT)" loses them).
_EDGE = ".,;:!?\"'`«»“”‘’…"
_WORD_RE = re.compile(r"^[^\W\d_](?:[^\W_]|[-'’])*[^\W_]$|^[^\W\d_]$")
_DIGIT = re.compile(r"\d")
_SYMBOL_CHARS = set("()[]=#@+/\\%")
_DOSAGE = re.compile(r"^\d+(?:[.,]\d+)?(?:mg|g|mcg|µg|ug|ml|mL|l|L|IU|UI|U|mEq|mmol|mol|kg|cm|mm|h|d)(?:/\w+)*$",
                     re.IGNORECASE)
# "45-year-old", "3-day", "2nd": a number glued to ordinary words is not a term (each number is its own string).
_NUMERIC_PHRASE = re.compile(r"^\d+(?:[.,]\d+)?(?:-[^\W\d_]+)+$|^\d+(?:st|nd|rd|th)$", re.IGNORECASE)
# Measurement units are symbolic strings even without digits or slashes.
_UNITS = frozenset("mmHg cmH2O mEq mmol µmol umol mcg µg ng pg IU UI bpm kPa mOsm".split())
_SEQUENCE = re.compile(r"^[ACGTU]{8,}$")
_FORMULA = re.compile(r"^(?:[A-Z][a-z]?\d*){2,}[+-]?$")

STOPWORDS = frozenset("""a an and are as at be been being but by can could did do does for from had has have he her
his how i if in into is it its may might more most no not of on or our she should so some such than that the their
them then there these they this those to was we were what when where which while who why will with would you your
which whose whom also after before between during each other only over under very what's patient patients year
years old day days""".split())


def case_texts(case: Case) -> list[str]:
    """Every text field of a case: context, scenario, summary, questions, answers, option texts, evidence."""
    texts = [case.context, case.clinical_scenario, case.summary or ""]
    texts += case.questions
    texts += case.answers or []
    for opts in case.options or []:
        texts += list((opts or {}).values())
    for ev in case.evidence or []:
        texts += ev
    return [t for t in texts if t and t.strip()]


def _strip(token: str) -> str:
    token = token.strip(_EDGE)
    for open_, close in ("()", "[]", "{}"):
        while token.startswith(open_) and token.count(open_) > token.count(close):
            token = token[1:].strip(_EDGE)
        while token.endswith(close) and token.count(close) > token.count(open_):
            token = token[:-1].strip(_EDGE)
    return token


def split_tokens(text: str) -> list[str]:
    out = []
    for raw in text.split():
        tok = _strip(raw)
        if tok:
            out.append(tok)
    return out


def classify(term: str) -> str:
    """``multiword`` (has a space), ``symbolic`` (SMILES, chemical formula, gene sequence, dosage code: digits or
    symbol characters, or a formula/sequence shape), ``abbreviation`` (short, mostly capitals), else ``word``."""
    if " " in term:
        return "multiword"
    if (term in _UNITS or _DIGIT.search(term) or any(c in _SYMBOL_CHARS for c in term) or _DOSAGE.match(term)
            or _SEQUENCE.match(term) or (_FORMULA.match(term) and not term.isalpha())):
        return "symbolic"
    letters = [c for c in term if c.isalpha()]
    upper = sum(c.isupper() for c in letters)
    if letters and len(term) <= 6 and (upper == len(letters) and len(letters) >= 2 or upper >= 2):
        return "abbreviation"
    return "word"


def is_candidate(token: str) -> bool:
    """Words (letters, inner hyphens/apostrophes) of 2+ characters and symbolic strings with at least a letter or
    a symbol; plain numbers and stopwords are not terms."""
    if len(token) < 2 or token.lower() in STOPWORDS:
        return False
    if _WORD_RE.match(token):
        return True
    if token.replace(".", "").replace(",", "").isdigit() or _NUMERIC_PHRASE.match(token):
        return False
    return classify(token) == "symbolic" and any(c.isalpha() for c in token)


@dataclass
class TermStats:
    key: str  # case-folded
    variants: Counter[str] = field(default_factory=Counter)
    count: int = 0
    cases: set[str] = field(default_factory=set)
    from_glossary: bool = False

    @property
    def surface(self) -> str:
        """The most frequent surface form (ties: the lexicographically first, so results are stable)."""
        if not self.variants:
            return self.key
        best = max(self.variants.values())
        return min(v for v, c in self.variants.items() if c == best)

    @property
    def contexts(self) -> int:
        return len(self.cases)


def mine_terms(cases: Sequence[Case], *, ngrams: int = 3, min_ngram_count: int = 5) -> dict[str, TermStats]:
    """Count single-token candidates and 2..``ngrams``-word content-word sequences (multi-word terms) per case."""
    stats: dict[str, TermStats] = {}

    def add(term: str, case_id: str) -> None:
        key = term.lower()
        st = stats.get(key)
        if st is None:
            st = stats[key] = TermStats(key=key)
        st.variants[term] += 1
        st.count += 1
        st.cases.add(case_id)

    grams: dict[str, TermStats] = {}
    for case in cases:
        for text in case_texts(case):
            for sentence in re.split(r"(?<=[.;:!?])\s+|\n+", text):
                toks = split_tokens(sentence)
                for tok in toks:
                    if is_candidate(tok):
                        add(tok, case.id)
                for n in range(2, ngrams + 1):
                    for i in range(len(toks) - n + 1):
                        window = toks[i:i + n]
                        if all(_WORD_RE.match(w) and w.lower() not in STOPWORDS and len(w) > 2 for w in window):
                            phrase = " ".join(window)
                            st = grams.setdefault(phrase.lower(), TermStats(key=phrase.lower()))
                            st.variants[phrase] += 1
                            st.count += 1
                            st.cases.add(case.id)
    for key, st in grams.items():
        if st.count >= min_ngram_count:
            stats[key] = st
    return stats


def read_glossary(path: str | Path) -> list[str]:
    """One term per line (``#`` comments, blank lines skipped); a TSV/CSV keeps its first column."""
    from clinrag.core.errors import ClinragError

    path = Path(path)
    if not path.exists():
        raise ClinragError(f"{path}: no such glossary file")
    terms = []
    for line in text_lines(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        term = re.split(r"\t|,(?=\S)", line, maxsplit=1)[0].strip()
        if term:
            terms.append(term)
    return terms


def add_glossary(stats: dict[str, TermStats], glossary: Iterable[str], cases: Sequence[Case]) -> None:
    """Count each glossary term in the cases (case-insensitive, whole-word) and mark it as coming from the
    glossary; a term that never occurs is kept with zero counts (the audit then says why it is not added)."""
    texts = [(case.id, "\n".join(case_texts(case))) for case in cases]
    for term in glossary:
        key = term.lower()
        st = stats.get(key)
        if st is None:
            st = stats[key] = TermStats(key=key)
            pattern = re.compile(r"(?<![\w])" + re.escape(term) + r"(?![\w])", re.IGNORECASE)
            for case_id, text in texts:
                for m in pattern.finditer(text):
                    st.variants[m.group(0)] += 1
                    st.count += 1
                    st.cases.add(case_id)
            if not st.variants:
                st.variants[term] = 0
        st.from_glossary = True


def as_row(st: TermStats) -> dict[str, Any]:
    return {"term": st.surface, "key": st.key, "variants": dict(st.variants.most_common(5)), "count": st.count,
            "contexts": st.contexts, "from_glossary": st.from_glossary}
