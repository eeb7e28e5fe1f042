"""The page's pieces without a browser: the form → case, the step lines, the answers with their sources."""

from __future__ import annotations

import pytest
from clinrag.core.errors import CaseError
from clinrag.core.types import Hit, Passage
from clinrag.serving.ui import form_case, parse_questions, questions_text
from clinrag.serving.ui_render import RunView, render_response


def test_questions_numbered_or_one_per_line():
    assert parse_questions("1. What is it? 2. How is it treated?") == ["What is it?", "How is it treated?"]
    assert parse_questions("What is it?\nHow is it treated?\n\n") == ["What is it?", "How is it treated?"]
    assert parse_questions("Is a dose of 2.5 mg safe?") == ["Is a dose of 2.5 mg safe?"]
    assert parse_questions(questions_text(["a?", "b?"])) == ["a?", "b?"]


def test_form_case_keeps_references_only_while_the_questions_are_unchanged():
    picked = {"id": "c1", "clinical_scenario": "old", "questions": ["a?", "b?"], "answers": ["A", "B"]}
    same = form_case("c1", "edited scenario", "1. a?\n2. b?", picked)
    assert (same.id, same.clinical_scenario, same.answers) == ("c1", "edited scenario", ["A", "B"])
    edited = form_case("c1", "old", "a?\nb?\nc?", picked)
    assert edited.questions == ["a?", "b?", "c?"] and edited.answers is None
    assert form_case(None, "A patient.", "Why?", None).id == "pasted-case"
    with pytest.raises(CaseError, match="the form, field 'clinical_scenario': must not be empty"):
        form_case(None, "  ", "Why?", None)


def _response(answer_text: str = "Give aspirin [p1].") -> dict:
    return {"case_id": "c<1>", "strategy": "none", "generator": "extractive", "summary": "A man & chest pain.",
            "answers": [{"index": 1, "question": "What <b>now</b>?", "answer": answer_text,
                         "sources": [{"id": "p1", "title": "MI <care>", "score": 0.5}], "sub_questions": []}],
            "notes": ["a <note>"], "usage": {"llm_calls": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                             "seconds": 0.25}}


def test_sources_open_to_the_passage_and_every_text_is_escaped():
    page = render_response(_response("<script>alert(1)</script>"),
                           {"p1": Passage("p1", "Aspirin <300 mg> first.\n\nThen PCI.", "MI")})
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "What &lt;b&gt;now&lt;/b&gt;?" in page and "A man &amp; chest pain." in page and "a &lt;note&gt;" in page
    assert '<details class="source" data-id="p1"><summary><code>p1</code> — MI &lt;care&gt;' in page
    assert "<p>Aspirin &lt;300 mg&gt; first.</p><p>Then PCI.</p>" in page  # the passage text, paragraph by paragraph
    assert "(passage text not available)" in render_response(_response(), {})


def test_the_view_follows_the_served_graphs_updates():
    view = RunView("none")
    view.add({"case": {"steps": [{"step": "case", "questions": 1, "strategy": "none", "generator": "extractive",
                                  "k": 1}]}})
    hit = Hit(Passage("p1", "Aspirin first.", "MI"), 0.5)
    view.add({"retrieve": {"retrieved": {"q1": [hit]},
                           "steps": [{"step": "retrieve", "sub_question": "q1", "passages": [{"id": "p1"}]}]}})
    assert "✓ Passages retrieved" in view.progress_html(True) and "q1: p1" in view.progress_html(True)
    assert view.progress_html(True).endswith("… working</li></ol></div>") and view.result_html() == ""
    view.add({"compose": _response()})
    assert "✓ Response composed" in view.progress_html(False) and "Aspirin first." in view.result_html()
