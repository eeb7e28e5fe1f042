"""Citation parsing and the shared LLM generator logic (prompts, batching, usage)."""

from __future__ import annotations

from collections.abc import Sequence

from clinrag.core.cases import Case
from clinrag.core.types import Generation, Hit, Passage, Query, SubQuestion, Usage
from clinrag.plugins.generators.base import AnswerRequest
from clinrag.plugins.generators.llm import LLMGenerator, parse_citations, split_usage


def test_parse_citations_keeps_only_prompt_ids_in_order():
    text = "Aspirin first [kb-2]; then PCI [kb-1, kb-2] and [KB-3]. Not [kb-99] nor [see above]."
    assert parse_citations(text, ["kb-1", "kb-2", "kb-3"]) == ["kb-2", "kb-1", "kb-3"]
    assert parse_citations("no brackets here", ["kb-1"]) == []
    assert parse_citations("[kb-1 and kb-2]", ["kb-1", "kb-2"]) == ["kb-1", "kb-2"]


def test_split_usage_sums_to_the_batch_time():
    usages = split_usage(3.0, [10, 20, 30], [1, 2, 3])
    assert [u.llm_calls for u in usages] == [1, 1, 1]
    total = sum(usages, Usage())
    assert (total.prompt_tokens, total.completion_tokens) == (60, 6)
    assert abs(total.seconds - 3.0) < 1e-9


class _RecordingLLM:
    """Wiring only: records the conversations and echoes a citation of the first passage it was shown."""

    def __init__(self) -> None:
        self.calls: list[list[list[dict[str, str]]]] = []

    def chat(self, conversations: Sequence[Sequence[dict[str, str]]], *, max_new_tokens: int | None = None):
        self.calls.append([list(c) for c in conversations])
        out = []
        for conv in conversations:
            user = conv[-1]["content"]
            first_id = user.split("<<<PASSAGES", 1)[1].split("[", 1)[1].split("]", 1)[0] if "[" in user else ""
            out.append(Generation(f"answer citing [{first_id}] and [invented-1]", usage=Usage(llm_calls=1)))
        return out


class _Gen(LLMGenerator):
    def __init__(self) -> None:
        super().__init__(max_new_tokens=8)
        self._llm = _RecordingLLM()

    @property
    def llm(self):
        return self._llm


def test_answers_are_one_batched_call_with_prompt_ids_only():
    case = Case(id="c1", clinical_scenario="A 50-year-old with chest pain.", questions=["Diagnosis?", "Treatment?"])
    hits = (Hit(Passage("kb-a", "Text a."), 0.9, 0), Hit(Passage("kb-b", "Text b."), 0.5, 1))
    reqs = [AnswerRequest(SubQuestion(f"q{i}", i, q, (Query(q),)), q, hits) for i, q in enumerate(case.questions)]
    gen = _Gen()
    out = gen.answer(case, reqs)
    assert len(gen.llm.calls) == 1 and len(gen.llm.calls[0]) == 2  # one call per case, one conversation per sub-q
    assert [g.cited_ids for g in out] == [["kb-a"], ["kb-a"]]
    convs = gen.llm.calls[0]
    assert convs[0][0] == convs[1][0]  # same system prompt
    assert convs[0][1]["content"].startswith("Clinical scenario: A 50-year-old")  # scenario first: shared prefix
    summary = gen.summarize(case)
    assert len(gen.llm.calls) == 2 and summary.cited_ids == []


def test_strip_unknown_citations_keeps_shown_ids_and_prose_brackets():
    from clinrag.plugins.generators.llm import strip_unknown_citations

    text = "MI [kb-1, kb-12]; see [pubmed_99] and [see above], option [B], dose [2.5 mg]."
    assert strip_unknown_citations(text, ["kb-1"]) == (
        "MI [kb-1]; see and [see above], option [B], dose [2.5 mg].", ["kb-12", "pubmed_99"])
    assert strip_unknown_citations("Fine [kb-1].", ["KB-1"]) == ("Fine [kb-1].", [])
