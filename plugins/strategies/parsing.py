"""Defensive parsing of what a (possibly tiny) LLM wrote when asked for query rewrites.

Strategies ask for a JSON list (or one item per line) and accept either: a JSON array anywhere in the text
(fenced or not), a JSON object holding one, a JSON string, or plain lines with bullets, numbering and quotes
stripped. Everything parsed is then *checked*: an item must be a plausible query (a few words, not too long),
must not be a preamble ("Here are three rephrasings:"), and must share a content word with what it rewrites,
so an off-topic or echoed-instruction line never reaches the retriever. A parser returns ``[]`` / ``None``
when nothing usable is left; the caller then falls back to the original question and records that it did.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from clinrag.core.text import content_words

_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)(?:```|$)", re.DOTALL)
_BULLET = re.compile(r"^\s*(?:[-*•·>]+|\(?\d{1,2}[.):\]]|\(?[a-zA-Z][.)]|(?:q(?:uery|uestion)?|rewrite|rephrasing|"
                     r"paraphrase|passage)\s*\d*\s*[:.)-])\s*", re.IGNORECASE)
# "General question: …", "Rephrased query 2: …", "Passage: …" — a label, not part of the query.
_LABEL = re.compile(r"^(?:[A-Za-z-]+\s+){0,2}(?:question|query|rewrite|rephrasing|paraphrase|passage|answer|version)"
                    r"\s*\d*\s*:\s*", re.IGNORECASE)
_INTERROGATIVE = (r"(?:what|how|which|when|why|where|who|whom|whose|is|are|was|were|should|does|do|did|can|could|"
                  r"would|will|has|have)")
_QUESTION = re.compile(rf"^{_INTERROGATIVE}\b", re.IGNORECASE)
# The last interrogative clause inside a longer reply: "The answer is: How is X treated?" → "How is X treated?"
_EMBEDDED_QUESTION = re.compile(rf"(?:^|[:.!]\s+|\s-\s)({_INTERROGATIVE}\b[^?:]*\?)", re.IGNORECASE)
_QUOTED = re.compile(r'"([^"\n]{3,})"')
_PREAMBLE = re.compile(r"^(?:here (?:are|is)|sure|certainly|okay|ok|the (?:following|rephrased|rewritten)|"
                       r"rephrasings?|paraphrases?|rewrites?|answer|output|json)\b", re.IGNORECASE)
# Keys a model might wrap its list or text in, e.g. {"queries": [...]} or {"question": "..."}.
_KEYS = ("queries", "questions", "paraphrases", "rewrites", "rephrasings", "sub_questions", "subquestions",
         "items", "list", "question", "query", "passage", "text", "answer")


def _unfence(text: str) -> str:
    m = _FENCE.search(text)
    return m.group(1) if m else text


def _strings(value: Any) -> list[str] | None:
    """The strings a decoded JSON value holds (a list, or an object wrapping one), else None."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict):
                inner = _strings(item)
                if inner:
                    out.extend(inner)
        return out
    if isinstance(value, dict):
        for key in _KEYS:
            for k, v in value.items():
                if k.lower() == key:
                    got = _strings(v)
                    if got:
                        return got
        strings = [v for v in value.values() if isinstance(v, str)]
        return strings or None
    return None


def _json_items(text: str) -> list[str] | None:
    """Strings from the first JSON array/object/string in ``text`` that decodes, else None."""
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch in "[{":
            try:
                value, _ = decoder.raw_decode(text[i:])
            except ValueError:
                continue
            got = _strings(value)
            if got:
                return got
    stripped = text.strip()
    if stripped.startswith('"'):
        try:
            value = json.loads(stripped)
        except ValueError:
            return None
        return _strings(value)
    return None


def _line_items(text: str) -> list[str]:
    """One item per line; a line holding quoted strings (a JSON list cut short) gives those strings."""
    out = []
    for line in text.splitlines():
        quoted = _QUOTED.findall(line)
        if len(quoted) > 1 or (quoted and line.lstrip(" -*•[0123456789.)").startswith('"')):
            out.extend(quoted)
            continue
        line = _BULLET.sub("", line, count=1).strip()
        line = line.strip().strip('",\'`[]{}').strip()
        if line:
            out.append(line)
    return out


def clean(item: str) -> str:
    item = " ".join(item.split())
    item = _BULLET.sub("", item, count=1)
    item = _LABEL.sub("", item, count=1)
    return item.strip().strip('"\'`').strip()


def is_preamble(item: str) -> bool:
    return item.endswith(":") or bool(_PREAMBLE.match(item))


def as_question(item: str) -> str | None:
    """``item`` as a question, or None when it is a statement (small models often answer instead of rewriting)."""
    if _QUESTION.match(item):
        item = item if item.endswith("?") else item.rstrip(".!;,") + "?"
        return item[0].upper() + item[1:]
    found = _EMBEDDED_QUESTION.findall(item)
    if found:
        q = found[-1].strip()
        return q[0].upper() + q[1:]
    return None


def shares_topic(item: str, anchor: str) -> bool:
    """Whether ``item`` mentions at least one content word of ``anchor`` (the question and its facts)."""
    return bool(set(content_words(item)) & set(content_words(anchor)))


def _key(text: str) -> str:
    """Comparison key: case, spacing and the space small models put before '?' ignored."""
    return re.sub(r"\s+([?.!,])", r"\1", " ".join(text.lower().split()))


def parse_list(text: str, *, anchor: str, exclude: Iterable[str] = (), limit: int | None = None,
               min_words: int = 3, max_words: int = 40, questions: bool = False) -> list[str]:
    """Query-like items from an LLM's list output; ``[]`` when none survives the checks.

    ``anchor`` is the text the items rewrite (each must share a content word with it); items equal to one
    in ``exclude`` (case-insensitively, e.g. the original question) and duplicates are dropped. With
    ``questions`` every item must be (or contain) a question; statements are dropped.
    """
    body = _unfence(text)
    items = _json_items(body)
    if items is None:
        items = _line_items(body)
    seen = {_key(e) for e in exclude}
    out: list[str] = []
    for raw in items:
        item = clean(raw)
        if questions and item:
            item = as_question(item) or ""
        key = _key(item)
        n = len(item.split())
        if (not item or key in seen or is_preamble(item) or not (min_words <= n <= max_words)
                or not shares_topic(item, anchor)):
            continue
        seen.add(key)
        out.append(item)
        if limit is not None and len(out) >= limit:
            break
    return out


def parse_question(text: str, *, anchor: str, exclude: Iterable[str] = (), max_words: int = 40) -> str | None:
    """The first usable question in an LLM's output (JSON or plain text), or None."""
    got = parse_list(text, anchor=anchor, exclude=exclude, limit=1, max_words=max_words, questions=True)
    return got[0] if got else None


def parse_passage(text: str, *, anchor: str, min_words: int = 8, max_words: int = 160) -> str | None:
    """A hypothetical passage: the text (or a JSON string/field), truncated to ``max_words``; None if unusable."""
    body = _unfence(text).strip()
    items = _json_items(body)
    if items:
        body = " ".join(items)
    lines = [ln for ln in (clean(x) for x in body.splitlines()) if ln]
    if lines and is_preamble(lines[0]):  # "Here is a passage:"; later "Heading:" lines are content
        lines = lines[1:]
    passage = " ".join(" ".join(lines).split())
    words = passage.split()
    if len(words) < min_words or not shares_topic(passage, anchor):
        return None
    return " ".join(words[:max_words])
