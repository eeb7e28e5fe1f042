"""Answer metrics: pure functions of a generated answer and a reference.

* :func:`token_f1` — SQuAD-style: lowercase, strip punctuation and English articles, then F1 over the
  bag of tokens. Chinese/Japanese/Korean characters count one token each (there are no spaces to split on),
  so a CJK answer is scored instead of collapsing to one giant token.
* :func:`rouge_l` — ROUGE-L F-measure from the maintained ``rouge-score`` package (Porter stemming). Its
  default tokenizer drops every non-ASCII character, so text containing CJK goes through the same
  per-character tokenizer as :func:`token_f1`.
* :func:`parse_choice` / :func:`mcq_correct` — which option of a multiple-choice question an answer picks,
  parsed from the forms generators actually write ("B", "B.", "(B)", "Answer: B", "option 2", the option text).
* :func:`parse_number` / :func:`numeric_correct` — the number an answer gives, checked against a tolerance.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_PUNCT = set(string.punctuation) | set("，。！？；：、“”‘’（）《》【】—…·")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation, drop articles, collapse whitespace."""
    text = text.lower()
    text = "".join(" " if ch in _PUNCT else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    """Normalised tokens; each CJK character is its own token."""
    out: list[str] = []
    for word in normalize_answer(text).split():
        if _CJK.search(word):
            out.extend(t for t in re.split(rf"({_CJK.pattern})", word) if t)
        else:
            out.append(word)
    return out


def token_f1(prediction: str, reference: str) -> float:
    """Token-overlap F1 (SQuAD). Both empty → 1.0; one empty → 0.0."""
    pred, ref = answer_tokens(prediction), answer_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


class _Tokenizer:
    """rouge-score's default tokenizer (with stemming) for Latin text, per-character tokens for CJK."""

    def __init__(self) -> None:
        from rouge_score.tokenizers import DefaultTokenizer

        self._default = DefaultTokenizer(use_stemmer=True)

    def tokenize(self, text: str) -> list[str]:
        if _CJK.search(text):
            return answer_tokens(text)
        return self._default.tokenize(text)


@lru_cache(maxsize=1)
def _scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Tokenizer())


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence), via ``rouge-score``."""
    if not prediction.strip() or not reference.strip():
        return float(prediction.strip() == reference.strip())
    return float(_scorer().score(reference, prediction)["rougeL"].fmeasure)


# -- multiple choice --------------------------------------------------------------------------------------

def _key_pattern(keys: list[str]) -> str:
    return "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))


def parse_choice(answer: str, options: Mapping[str, str]) -> str | None:
    """The option key an answer chooses, or None when it commits to none (or to several equally).

    Tried in order, first match wins:

    1. an explicit statement: "Answer: B", "answer is (B)", "correct option is B", "I choose B";
    2. the answer opening with a key: "B", "B.", "(B)", "B)", "B:", "**B**";
    3. "option 2" / "choice 2" (1-based position among the options) or "option B";
    4. a lone key elsewhere in the text as a standalone token ("… so (C) fits best");
    5. the option text itself: the single option whose (normalised) text appears in the answer, the longest
       one when one option's text contains another's.
    """
    if not options:
        return None
    keys = list(options)
    by_upper = {k.upper(): k for k in keys}
    text = answer.strip()
    if not text:
        return None

    def found(raw: str) -> str | None:
        return by_upper.get(raw.upper())

    # Keys match case-sensitively as written in the options ("a" is an article, not option A) unless the
    # options themselves are lowercase.
    lower_keys = all(k.islower() for k in keys if k.isalpha())
    kp = _key_pattern(keys)
    flags = re.IGNORECASE if lower_keys else 0
    explicit = re.search(rf"(?i:answer|option|choice|choose|select|pick)\s*(?i:is|would be|:|=|-)?[\s:]*"
                         rf"[\(\[\*]*\s*({kp})\s*[\)\]\*]*(?=[\s.,;:!)]|$)", text, flags)
    if explicit:
        return found(explicit.group(1))
    opening = re.match(rf"^[\s\*\(\[]*({kp})\s*(?:[\)\]\.:\*,\-—]|$)", text, flags | re.IGNORECASE)
    if opening and (opening.group(1) in keys or not opening.group(1).isalpha() or len(text) <= 3
                    or text.lstrip(" *")[:1] in "([" or text.lstrip(" *")[1:2] in ")]"):
        return found(opening.group(1))
    positional = re.search(r"\b(?:option|choice|answer)\s*(?:number\s*|no\.?\s*|#\s*)?(\d{1,2})\b", text,
                           re.IGNORECASE)
    if positional and not any(k.isdigit() for k in keys):
        pos = int(positional.group(1))
        if 1 <= pos <= len(keys):
            return keys[pos - 1]
    # A key standing alone in brackets or bold elsewhere: "… so (C) fits best", "**C**".
    lone = {m.group(1) for m in re.finditer(rf"(?:\(|\[|\*\*)\s*({kp})\s*(?:\)|\]|\*\*)", text, flags)}
    if len(lone) == 1:
        return found(lone.pop())
    norm = normalize_answer(text)
    hits = [k for k, v in options.items() if normalize_answer(v) and normalize_answer(v) in norm]
    if len(hits) > 1:  # "Ductal carcinoma in situ" also contains "carcinoma": keep the longest text only
        longest = max(len(normalize_answer(options[k])) for k in hits)
        hits = [k for k in hits if len(normalize_answer(options[k])) == longest]
    return hits[0] if len(hits) == 1 else None


def mcq_correct(answer: str, options: Mapping[str, str], key: str) -> float:
    """1.0 when the parsed choice is ``key``, else 0.0 (no parseable choice counts as wrong)."""
    return float(parse_choice(answer, options) == key)


# -- numeric ----------------------------------------------------------------------------------------------

_NUMBER = r"[-−]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[-−]?\d+(?:\.\d+)?|[-−]?\.\d+"
_NUM = re.compile(rf"(?<![\w.])({_NUMBER})(?:[eE]([-−]?\d+)|\s*[×x]\s*10\^?\s*([-−]?\d+))?")
_MARKED = re.compile(rf"(?:answer|result|value|score|total|equals|is|=|≈|~|:)\s*(?:is|of|=|:|approximately|about|≈)?"
                     rf"\s*\**\s*({_NUMBER})", re.IGNORECASE)


def _to_float(raw: str) -> float:
    return float(raw.replace(",", "").replace("−", "-"))


def parse_number(answer: str) -> float | None:
    """The number an answer gives: the last one after a marker ("answer is", "=", "≈", ":"), else the first
    number in the text. Thousands separators and a unicode minus are understood."""
    marked = list(_MARKED.finditer(answer))
    m = _NUM.match(answer, marked[-1].start(1)) if marked else _NUM.search(answer)
    if not m:
        return None
    value = _to_float(m.group(1))
    exponent = m.group(2) or m.group(3)
    if exponent:
        value *= 10 ** int(exponent.replace("−", "-"))
    return value


def numeric_correct(answer: str, tolerance: tuple[float, float]) -> float:
    """1.0 when the parsed number lies in ``[low, high]`` (inclusive), else 0.0."""
    value = parse_number(answer)
    lo, hi = tolerance
    return float(value is not None and lo <= value <= hi)


# -- yes / no / maybe (PubMedQA-style research questions) -----------------------------------------------------

DECISIONS = ("yes", "no", "maybe")
_DECISION = re.compile(r"\b(yes|no|maybe)\b", re.IGNORECASE)
_LEADING_DECISION = re.compile(r"^\W*(yes|no|maybe)\b\s*[.,;:!\-—]", re.IGNORECASE)


def reference_decision(reference: str | None, meta_decision: Any = None) -> str | None:
    """The gold yes/no/maybe: ``meta.final_decision`` when the case has it, else a reference answer that opens with
    the decision ("yes. The effects …"). Other references (MedQuAD's "Is X inherited?") have none."""
    if isinstance(meta_decision, str) and meta_decision.strip().lower() in DECISIONS:
        return meta_decision.strip().lower()
    m = _LEADING_DECISION.match(reference or "")
    return m.group(1).lower() if m else None


def parse_decision(answer: str) -> str | None:
    """The decision an answer gives: its opening word when that is yes/no/maybe, else the first yes/no/maybe in its
    first sentence; None when it commits to none (counted wrong)."""
    m = _LEADING_DECISION.match(answer) or _DECISION.search(re.split(r"(?<=[.!?])\s", answer.strip(), maxsplit=1)[0])
    return m.group(1).lower() if m else None
