"""Prompts for query translation (answer prompts live in :mod:`clinrag.agent.prompts`).

Each prompt asks for a structured reply (a JSON list of strings, or a single line) that
:mod:`clinrag.plugins.strategies.parsing` reads defensively. They are short on purpose: small models follow a
short, concrete instruction with one example better than a long one. Every builder returns one conversation
(a list of chat messages); strategies batch one conversation per sub-question.
"""

from __future__ import annotations

from clinrag.plugins.generators.base import Message

SYSTEM = "You help a medical search engine. You rewrite questions into search queries. Reply with the requested format only."


def _context(facts: str) -> str:
    return f"Patient facts: {facts}\n" if facts.strip() else ""


def paraphrases(question: str, facts: str, n: int) -> list[Message]:
    """``n`` rewordings of a question, as a JSON list (used by ``multi_query`` and ``rag_fusion``)."""
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": (
                f"{_context(facts)}Question: {question}\n\n"
                f"Write {n} different ways to ask this question. Name the disease, drug or test instead of "
                f"'it' or 'he'. Reply with a JSON list of {n} strings, for example:\n"
                '["What is the first-line treatment of asthma?", "How is asthma managed initially?"]')}]


def step_back(question: str, facts: str) -> list[Message]:
    """A more generic question about the principle behind a specific one (``step_back``)."""
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": (
                f"{_context(facts)}Question: {question}\n\n"
                "Write one more general question about the medical topic behind this question, for example\n"
                "Question: Which antibiotic should this man with pneumonia get?\n"
                "General question: How is community-acquired pneumonia treated?\n\n"
                "Reply with the general question only, on one line.")}]


def hypothetical_passage(question: str, facts: str, max_words: int) -> list[Message]:
    """A short textbook-style passage that would answer the question (``hyde``)."""
    return [{"role": "system", "content": "You write short, factual passages for a medical textbook."},
            {"role": "user", "content": (
                f"{_context(facts)}Question: {question}\n\n"
                f"Write a textbook passage of at most {max_words} words that answers the question. "
                "Reply with the passage only.")}]


def decompose(question: str, scenario: str) -> list[Message]:
    """Split one input question into self-contained sub-questions (``decomposition`` with ``refine``)."""
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": (
                f"{_context(scenario)}Question: {question}\n\n"
                "If the question asks several things, split it into separate questions; otherwise keep it as one. "
                "Each question must make sense alone: name the disease, drug or test instead of 'it'. "
                "Reply with a JSON list of strings, for example:\n"
                '["What is the most likely diagnosis of chest pain with ST elevation?", '
                '"How is ST-elevation myocardial infarction treated?"]')}]
