"""Small text helpers shared by strategies, generators and metrics (no heavy imports)."""

from __future__ import annotations

import re

_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-']+|\d+(?:\.\d+)?")

STOPWORDS = frozenset("""
a an and are as at be been being but by can could did do does doing for from had has have having he her hers
him his how i if in into is it its itself may might me more most my no nor not of on or other our ours out
over own same she should so some such than that the their theirs them then there these they this those to too
under until up very was we were what when where which while who whom why will with would you your yours about
above after again against all am any because before below between both during each few further here just
once only off also shall must per via
""".split())

# Words that say what is asked, not what it is about: a question made only of these needs the scenario.
GENERIC = frozenset("""
patient patients likely diagnosis diagnose diagnosed treatment treat treated management manage managed next
step best initial first appropriate most cause causes caused test tests testing symptom symptoms sign signs
finding findings explain explanation option options following condition disease disorder case therapy drug
drugs dose dosing recommended indicated investigation investigations confirm confirmed result results
prognosis risk risks factor factors complication complications happen happens need needs important
medicine medicines medication medications long-term term immediate immediately given give preferred
strategy target time long discharge recommend recommends should
""".split())

_PRONOUN = re.compile(r"\b(it|this|that|these|they|them|he|she|his|her|the patient)\b", re.IGNORECASE)


def sentences(text: str) -> list[str]:
    """Split text into sentences (a heuristic splitter good enough for passages and vignettes)."""
    out = []
    for block in re.split(r"\n\s*\n|\n(?=\s*[-*•]\s)", text):
        block = " ".join(block.split())
        if block:
            out.extend(s.strip() for s in _SENT_END.split(block) if s.strip())
    return out


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS and len(w) > 2]


def topical_words(text: str) -> list[str]:
    """Content words that name a topic (not generic question words like 'diagnosis' or 'treatment')."""
    return [w for w in content_words(text) if w not in GENERIC]


def has_pronoun(text: str) -> bool:
    return bool(_PRONOUN.search(text))


def truncate_words(text: str, n: int) -> str:
    parts = text.split()
    return text if len(parts) <= n else " ".join(parts[:n]) + " …"
