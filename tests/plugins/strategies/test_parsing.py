"""Defensive parsing of LLM rewrites: the formats small models actually produce, and the junk they break into."""

from __future__ import annotations

from clinrag.plugins.strategies.parsing import parse_list, parse_passage, parse_question

ANCHOR = "What causes autoimmune atrophic gastritis? The patient has gastritis and vitamin B12 deficiency."


def test_json_list_plain_fenced_and_wrapped():
    want = ["What is the cause of autoimmune atrophic gastritis?", "Why does atrophic gastritis develop?"]
    assert parse_list('["What is the cause of autoimmune atrophic gastritis?", "Why does atrophic gastritis '
                      'develop?"]', anchor=ANCHOR) == want
    fenced = ('Sure! Here you go:\n```json\n["What is the cause of autoimmune atrophic gastritis?",\n'
              ' "Why does atrophic gastritis develop?"]\n```')
    assert parse_list(fenced, anchor=ANCHOR) == want
    wrapped = '{"paraphrases": ["What is the cause of autoimmune atrophic gastritis?", ' \
              '"Why does atrophic gastritis develop?"]}'
    assert parse_list(wrapped, anchor=ANCHOR) == want
    objects = '[{"question": "What is the cause of autoimmune atrophic gastritis?"}]'
    assert parse_list(objects, anchor=ANCHOR) == want[:1]


def test_numbered_bulleted_quoted_lines():
    text = ('Here are three rephrasings:\n1. "What is the cause of autoimmune atrophic gastritis?"\n'
            '- Why does atrophic gastritis develop?\n* Query 3: Which factors lead to gastritis of autoimmune type?')
    assert parse_list(text, anchor=ANCHOR) == ["What is the cause of autoimmune atrophic gastritis?",
                                               "Why does atrophic gastritis develop?",
                                               "Which factors lead to gastritis of autoimmune type?"]


def test_drops_echoes_duplicates_off_topic_and_runaway_lines():
    original = "What causes Autoimmune atrophic gastritis ?"
    # Real SmolLM2-135M output: the original repeated three times.
    echo = ('1. "What causes Autoimmune atrophic gastritis ?"\n2. "What causes Autoimmune atrophic gastritis ?"\n'
            '3. "What causes Autoimmune atrophic gastritis ?"')
    assert parse_list(echo, anchor=ANCHOR, exclude=[original]) == []
    # Real SmolLM2-135M output: a degenerate counter, then the facts repeated past any sane length.
    runaway = "1. 1.1.1.1: " + "74-year-old man with productive cough, fever, confusion, " * 8
    assert parse_list(runaway, anchor="pneumonia cough fever") == []
    assert parse_list("1.1.1.1: 1.1.1.1.1: 1.1.1.1.1:", anchor=ANCHOR) == []
    assert parse_list("How do I bake sourdough bread at home?", anchor=ANCHOR) == []  # shares no content word
    dup = '["Why does atrophic gastritis develop?", "why does  atrophic gastritis develop?"]'
    assert parse_list(dup, anchor=ANCHOR) == ["Why does atrophic gastritis develop?"]
    assert parse_list("", anchor=ANCHOR) == []
    assert parse_list("[1, 2, 3]", anchor=ANCHOR) == []


def test_limit_and_broken_json_falls_back_to_lines():
    text = '["Why does atrophic gastritis develop?", "What is the cause of autoimmune gastritis?"'  # unclosed
    got = parse_list(text, anchor=ANCHOR, limit=1)
    assert got == ["Why does atrophic gastritis develop?"]


def test_parse_question_takes_first_usable_line():
    text = "General question: How is community-acquired pneumonia treated?\nThis is because..."
    assert parse_question(text, anchor="pneumonia antibiotic") == "How is community-acquired pneumonia treated?"
    assert parse_question("Sure:", anchor="pneumonia") is None


def test_parse_passage():
    text = ("Passage: Autoimmune atrophic gastritis is caused by antibodies against parietal cells and intrinsic "
            "factor, leading to loss of acid secretion and vitamin B12 malabsorption.")
    got = parse_passage(text, anchor=ANCHOR, max_words=10)
    assert got is not None and got.startswith("Autoimmune atrophic gastritis is caused") and len(got.split()) == 10
    assert parse_passage('{"passage": "' + text[9:] + '"}', anchor=ANCHOR).startswith("Autoimmune")
    assert parse_passage("I don't know.", anchor=ANCHOR) is None
    assert parse_passage("The weather in Paris is mild and sunny in the spring months of the year.",
                         anchor=ANCHOR) is None


def test_questions_mode_drops_statements_and_digs_out_embedded_questions():
    # Real SmolLM2-135M replies to the step-back prompt.
    assert parse_question("The medical topic behind this question is sepsis.", anchor="sepsis steps") is None
    embedded = "The answer to this question is: How is community-acquired pneumonia treated?"
    assert parse_question(embedded, anchor="pneumonia") == "How is community-acquired pneumonia treated?"
    assert parse_list("how is atrophic gastritis diagnosed", anchor=ANCHOR, questions=True) == [
        "How is atrophic gastritis diagnosed?"]
    statement = "The first-line treatment of autoimmune atrophic gastritis is a medication called croma-croma."
    assert parse_list(statement, anchor=ANCHOR, questions=True) == []
    assert parse_list(statement, anchor=ANCHOR) == [statement]  # without questions mode a statement is kept
