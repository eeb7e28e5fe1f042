"""Augmentation checks on real paraphrase strings, and the wiring with a scripted LLM (no model needed)."""

from __future__ import annotations

import json

from clinrag.core.cases import Case, load_cases
from clinrag.core.types import Generation
from clinrag.finetune.augment import (
    augment_cases,
    check_paraphrase,
    numbers_with_units,
    parse_paraphrase,
    protected_terms,
)
from clinrag.finetune.data import split_cases

CASE = Case(id="c1", clinical_scenario="A 67-year-old man on warfarin has an INR of 6.2 and Hb 9.5 g/dL. "
                                      "Heart rate 110/min.",
            questions=["What is the first step?", "Which drug reverses warfarin?"],
            options=[None, {"A": "Vitamin K", "B": "Protamine", "C": "Idarucizumab"}], answer_key=[None, "A"],
            answers=["Stop warfarin.", "A. Vitamin K"])


def test_numbers_units_and_terms():
    assert numbers_with_units("Hb 9.5 g/dL, INR 6,2 and 110/min") == {"9.5 g/dl": 1, "6.2": 1, "110 /min": 1}
    terms = protected_terms(CASE, extra=["INR"])
    assert {"warfarin", "inr"} <= terms


def test_good_paraphrase_passes():
    ok = check_paraphrase(CASE, "A man aged 67 taking warfarin presents with INR 6.2, Hb 9.5 g/dL and a heart rate "
                                "of 110/min.", ["What should be done first?", "Which agent reverses warfarin?"])
    assert ok.ok, ok.problems


def test_bad_paraphrases_are_rejected():
    changed_number = check_paraphrase(CASE, "A 67-year-old man on warfarin has an INR of 2.6 and Hb 9.5 g/dL. "
                                            "Heart rate 110/min.", ["First step?", "Which drug reverses warfarin?"])
    assert not changed_number.ok and any("numbers/units lost" in p for p in changed_number.problems)
    changed_unit = check_paraphrase(CASE, "A 67-year-old man on warfarin has an INR of 6.2 and Hb 9.5 mg/dL. "
                                          "Heart rate 110/min.", ["First step?", "Which drug reverses warfarin?"])
    assert not changed_unit.ok
    lost_drug = check_paraphrase(CASE, "A 67-year-old man on an anticoagulant has an INR of 6.2 and Hb 9.5 g/dL. "
                                       "Heart rate 110/min.", ["First step?", "Which drug reverses it?"])
    assert not lost_drug.ok and any("terms lost: warfarin" in p for p in lost_drug.problems)
    merged_questions = check_paraphrase(CASE, CASE.clinical_scenario.replace("man", "male"), ["One question only?"])
    assert not merged_questions.ok and "1 questions instead of 2" in merged_questions.problems
    same = check_paraphrase(CASE, CASE.clinical_scenario, CASE.questions)
    assert "identical to the original" in same.problems


def test_parse_paraphrase_reply():
    text = "Sure!\n**Scenario:** A man, 67.\nQuestions:\n1. First?\n2) Second?"
    assert parse_paraphrase(text) == ("A man, 67.", ["First?", "Second?"])
    assert parse_paraphrase("I cannot help with that.") is None


class ScriptedLLM:
    """Wiring-only stand-in for a ChatLLM: returns fixed replies, one good, one that drops a number, one junk."""

    def __init__(self, replies):
        self.replies, self.seen = replies, []

    def chat(self, conversations, *, max_new_tokens=None):
        self.seen.extend(conversations)
        return [Generation(text=r) for r in self.replies[: len(conversations)]]


def test_augment_keeps_valid_paraphrases_with_answer_key_intact_and_out_of_eval(tmp_path):
    good = ("Scenario: A man aged 67 taking warfarin presents with INR 6.2, Hb 9.5 g/dL and heart rate 110/min.\n"
            "Questions:\n1. What should be done first?\n2. Which agent reverses warfarin?")
    bad = ("Scenario: A man aged 67 taking warfarin presents with INR 6.2 and heart rate 110/min.\n"
           "Questions:\n1. What first?\n2. Which agent reverses warfarin?")
    llm = ScriptedLLM([good, bad, "no idea"])
    kept, stats = augment_cases([CASE], llm, n=3)
    assert stats == {"candidates": 3, "kept": 1, "rejected": 2,
                     "reasons": {"numbers/units lost": 1, "unparseable reply": 1}}
    aug = kept[0]
    assert aug.id == "c1-aug0" and aug.meta["augmented_from"] == "c1"
    assert (aug.options, aug.answer_key, aug.answers) == (CASE.options, CASE.answer_key, CASE.answers)
    assert "warfarin" in llm.seen[0][1]["content"]
    path = tmp_path / "aug.jsonl"
    path.write_text("".join(json.dumps(c.model_dump(exclude_none=True)) + "\n" for c in [CASE, aug]))
    reloaded = load_cases(path)
    assert reloaded[1].meta["augmented_from"] == "c1"
    split = split_cases(reloaded[:1], reloaded[1:], eval_fraction=0.0, seed=0)
    assert split.eval == [] and split.dropped_augmented == 1  # a paraphrase never lands in eval
