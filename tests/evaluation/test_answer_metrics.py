"""Answer metrics on hand-computed examples."""

import pytest
from clinrag.evaluation.answer_metrics import (
    answer_tokens,
    mcq_correct,
    normalize_answer,
    numeric_correct,
    parse_choice,
    parse_number,
    rouge_l,
    token_f1,
)


def test_normalize_answer_squad_style():
    assert normalize_answer("The  Cat, sat!  on a mat.") == "cat sat on mat"


def test_token_f1_hand_computed():
    # pred {cat, sat} vs ref {cat, sat, down}: P = 2/2, R = 2/3, F1 = 0.8
    assert token_f1("The cat sat", "a cat sat down") == pytest.approx(0.8)
    assert token_f1("dog", "cat") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("", "cat") == 0.0
    # repeated tokens count with multiplicity: pred (x, x, y), ref (x, y, y): common 2, P = R = 2/3
    assert token_f1("x x y", "x y y") == pytest.approx(2 / 3)


def test_cjk_characters_are_tokens():
    assert answer_tokens("高血压，需要治疗") == ["高", "血", "压", "需", "要", "治", "疗"]
    # 3 common of pred 3 / ref 4 characters: P = 1, R = 3/4, F1 = 6/7
    assert token_f1("高血压", "高血压病") == pytest.approx(6 / 7)


def test_rouge_l_hand_computed():
    # LCS("the cat sat", "the cat sat on the mat") = 3; P = 3/3, R = 3/6, F = 2/3
    assert rouge_l("the cat sat", "the cat sat on the mat") == pytest.approx(2 / 3)
    # stemming: "treats" / "treated" both stem to "treat"
    assert rouge_l("metformin treats diabetes", "metformin treated diabetes") == pytest.approx(1.0)
    assert rouge_l("高血压", "高血压病") == pytest.approx(6 / 7)  # not 0: CJK is tokenised per character
    assert rouge_l("", "x") == 0.0


OPTIONS = {"A": "Aspirin", "B": "Heparin", "C": "Warfarin therapy", "D": "Ductal carcinoma in situ", "E": "Carcinoma"}


@pytest.mark.parametrize("answer,expected", [
    ("B", "B"), ("B.", "B"), ("(B)", "B"), ("B) heparin", "B"), ("**B**", "B"), ("b", "B"),
    ("Answer: B", "B"), ("The answer is (C).", "C"), ("The correct option is E because …", "E"),
    ("option 2", "B"), ("I would go with choice 4.", "D"),
    ("Given the findings, (C) fits best.", "C"),
    ("Start warfarin therapy now.", "C"),
    ("Ductal carcinoma in situ is most likely.", "D"),  # contains "carcinoma" too: the longer text wins
    ("A. Aspirin — it inhibits platelets", "A"),
])
def test_parse_choice_forms(answer, expected):
    assert parse_choice(answer, OPTIONS) == expected


@pytest.mark.parametrize("answer", ["A patient like this needs imaging.", "The answer is a beta blocker.",
                                    "Either aspirin or heparin.", "", "No idea."])
def test_parse_choice_no_commitment(answer):
    assert parse_choice(answer, OPTIONS) is None


def test_mcq_correct():
    assert mcq_correct("Answer: C", OPTIONS, "C") == 1.0
    assert mcq_correct("Answer: C", OPTIONS, "B") == 0.0
    assert mcq_correct("unsure", OPTIONS, "B") == 0.0


@pytest.mark.parametrize("answer,expected", [
    ("The corrected QT interval is 413.58 msec.", 413.58),
    ("QTc = 330 / (0.85)^(1/3) = 415.2 msec", 415.2),  # the last marked number, not the first
    ("Score: 4", 4.0), ("About 1,234.5 mL", 1234.5), ("−3.5", -3.5), ("2.5e3 cells", 2500.0),
    ("4.1 x 10^-2", 0.041), ("no number here", None),
])
def test_parse_number(answer, expected):
    got = parse_number(answer)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_numeric_correct_within_tolerance():
    assert numeric_correct("QTc is 413.58 msec", (392.9, 434.3)) == 1.0
    assert numeric_correct("QTc is 450 msec", (392.9, 434.3)) == 0.0
    assert numeric_correct("QTc = 434.3", (392.9, 434.3)) == 1.0  # bounds are inclusive
    assert numeric_correct("cannot tell", (1.0, 2.0)) == 0.0


@pytest.mark.parametrize("answer,expected", [
    ("Yes. The intervention increased screening [pubmed-1].", "yes"),
    ("no, the trial found no difference", "no"),
    ("Maybe: the evidence is mixed.", "maybe"),
    ("The data suggest yes, but only in women. No effect in men.", "yes"),
    ("The intervention helped adherent women.", None),
    ("", None),
])
def test_parse_decision(answer, expected):
    from clinrag.evaluation.answer_metrics import parse_decision

    assert parse_decision(answer) == expected


def test_decision_accuracy_applies_to_yes_no_maybe_references_only():
    from clinrag.core.cases import Case
    from clinrag.evaluation.answer_metrics import reference_decision
    from clinrag.evaluation.scoring import applicable, gold_decision

    pubmed = Case(id="p", clinical_scenario="A clinician asks a research question.", questions=["Does X help?"],
                  answers=["yes. It does."], meta={"final_decision": "maybe"})
    medquad = Case(id="m", clinical_scenario="s", questions=["Is X inherited ?"],
                   answers=["This condition is inherited in an autosomal dominant pattern."])
    assert gold_decision(pubmed, 0) == "maybe"  # the labelled decision wins over the answer's wording
    assert "decision_accuracy" in applicable(pubmed, 0, retrieval=False)
    assert gold_decision(medquad, 0) is None and "decision_accuracy" not in applicable(medquad, 0, retrieval=False)
    assert reference_decision("No. Not at all.") == "no" and reference_decision("Nothing") is None
