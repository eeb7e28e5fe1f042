"""Decomposition's query text (when the scenario is appended) and the sibling texts each query carries."""

from __future__ import annotations

from clinrag.core.cases import Case
from clinrag.plugins.strategies.decomposition import (
    DecompositionStrategy,
    needs_scenario,
    retrieval_text,
)

SCENARIO = "A patient has just been told they have vitiligo. They and their family have several questions about it."


def test_a_question_naming_one_topic_is_retrieved_as_written():
    case = Case(id="v", clinical_scenario=SCENARIO, questions=["What is (are) vitiligo ?"])
    assert not needs_scenario("What is (are) vitiligo ?")
    assert retrieval_text(case, "What is (are) vitiligo ?") == "What is (are) vitiligo ?"
    # no topic of its own, or a pronoun: the scenario is what makes it specific
    assert needs_scenario("What is the next step?") and needs_scenario("How is it treated?")
    assert retrieval_text(case, "How is it treated?").endswith(SCENARIO)


def test_each_query_carries_its_siblings_as_contrast():
    case = Case(id="v", clinical_scenario=SCENARIO,
                questions=["What are the symptoms of vitiligo ?", "How to diagnose vitiligo and how is it treated?",
                           "What are the symptoms of vitiligo ?"])
    subs = DecompositionStrategy().translate(case).sub_questions
    assert [s.id for s in subs] == ["q1", "q2.1", "q2.2", "q3"]
    by_id = {s.id: s.queries[0].contrast for s in subs}
    assert by_id["q1"] == ("How to diagnose vitiligo?", "How is it treated?")  # a repeated question is no sibling
    assert by_id["q2.1"] == ("What are the symptoms of vitiligo ?", "How is it treated?")
    single = DecompositionStrategy().translate(Case(id="s", clinical_scenario="x", questions=["What causes gout?"]))
    assert single.sub_questions[0].queries[0].contrast == ()
